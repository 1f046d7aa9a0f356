"""A sidecar started by `todo-engine up` must not outlive it, kill -9 included. Two ways to notice, either
starting the graceful stop (bounded): Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG)`, SIGTERM), and
EOF on a pipe whose write end only the parent holds (any POSIX system)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
from collections.abc import Callable

__all__ = ["FORCE_SHUTDOWN", "PARENT_GONE_GRACE", "die_with_parent", "exit_after", "watch_parent_pipe"]

log = logging.getLogger("sidecar.supervision")

# daprd's shutdown API stops at once, skipping the graceful stop, when this header (HTTP) or metadata
# key (gRPC) is "true"
FORCE_SHUTDOWN = "dapr-force-shutdown"

# The graceful stop gets this long after the parent is gone, then the process exits regardless.
PARENT_GONE_GRACE = 1.5

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel for SIGTERM when the parent dies. False if `parent_pid` is no longer our parent.

    Checked after the prctl: a parent that died between our fork and the prctl has already reparented us,
    and its death signal will never come.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError):  # not Linux: the parent pipe alone must do
        log.debug("prctl is unavailable here; relying on the parent pipe")
    return os.getppid() == parent_pid


def watch_parent_pipe(fd: int, on_gone: Callable[[], None]) -> threading.Thread:
    """Call `on_gone` (on a daemon thread) once the pipe's read end `fd` reaches EOF: the parent is gone."""

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass  # the parent never writes; data would only be noise
        except OSError as exc:
            log.warning("parent pipe %d failed (%s): treating the parent as gone", fd, exc)
        on_gone()

    thread = threading.Thread(target=watch, name="parent-pipe", daemon=True)
    thread.start()
    return thread


def exit_after(seconds: float, code: int) -> threading.Timer:
    """Exit the process after `seconds` unless it ended first: the bound on a graceful stop."""

    def hard_exit() -> None:
        log.error("graceful stop took over %.1f s after the parent died: exiting now", seconds)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()
    return timer
