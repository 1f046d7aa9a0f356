"""One engine per data directory: an exclusive lock on `<data-dir>/engine.lock`, and the stored dev clock.

A leaf (standard library only) so `todo-engine up` and `todo-engine clock` can use it without loading the
sidecar. The lock is `flock(2)`: the kernel drops it when its last holder dies, so a lock file left by a
killed process never blocks. Who holds it:

- `todo-engine sidecar run` alone takes it at start (`Sidecar.start()`; tests' in-process sidecars too) and
  drops it in `stop()`.
- `todo-engine up` takes it before binding ports and hands the same open file down to its sidecar
  (`--data-dir-lock-fd`); both share one lock, which is free only once both are gone, so a sidecar that
  outlives a killed `up` for its last moments still keeps a second engine out.
- `todo-engine clock advance` takes it while it rewrites the stored clock, so it never races an engine.

The file holds JSON naming the holder (`pid`, `command`, and `sidecar_pid` under `up`): error messages and
tests read it. It is never deleted (deleting a flock file races with the next locker).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = [
    "DEV_CLOCK_FILE",
    "LOCK_FILE",
    "DataDirBusy",
    "DataDirLock",
    "read_dev_clock",
    "read_holder",
    "write_dev_clock",
]

LOCK_FILE = "engine.lock"
DEV_CLOCK_FILE = "dev-clock.json"

# A holder writes its JSON right after locking: a reader that catches it in between waits this long for it.
_HOLDER_READ_SECONDS = 1.0


class DataDirBusy(RuntimeError):
    """Another live process holds the data directory. Not retryable until that process stops."""

    def __init__(self, data_dir: Path, holder: dict[str, Any] | None) -> None:
        self.holder = holder or {}
        self.pid: int | None = self.holder.get("pid")
        if holder is None:
            who = "another process (its pid was not written)"
        else:
            who = f"{holder.get('command', 'a process')} (pid {self.pid})"
            if "sidecar_pid" in holder:
                who += f" and its sidecar (pid {holder['sidecar_pid']})"
        super().__init__(
            f"data directory {data_dir} is in use by {who}; stop it first ({data_dir / LOCK_FILE})"
        )


class DataDirLock:
    """The exclusive lock on one data directory, held through an open file descriptor."""

    def __init__(self, fd: int, data_dir: Path, info: dict[str, Any]) -> None:
        self._fd: int | None = fd
        self.data_dir = data_dir
        self.info = info

    @classmethod
    def acquire(cls, data_dir: Path, command: str) -> DataDirLock:
        """Lock `data_dir` (created if missing) for this process, or raise `DataDirBusy` at once."""
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise DataDirBusy(data_dir, read_holder(data_dir)) from None
        lock = cls(fd, data_dir, {"pid": os.getpid(), "command": command})
        lock._write()
        return lock

    @classmethod
    def adopt(cls, fd: int, data_dir: Path) -> DataDirLock:
        """Share the lock a parent (`todo-engine up`) holds and passed down as `fd`; note our pid in it."""
        path = data_dir / LOCK_FILE
        try:
            st, on_disk = os.fstat(fd), os.stat(path)
        except OSError as exc:
            raise ValueError(f"--data-dir-lock-fd {fd}: not an open lock of {data_dir}: {exc}") from exc
        if (st.st_dev, st.st_ino) != (on_disk.st_dev, on_disk.st_ino):
            raise ValueError(f"--data-dir-lock-fd {fd} is not {path}")
        try:
            # The same open file already holds the lock: this succeeds. Anything else means it is not ours.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(data_dir, read_holder(data_dir)) from None
        os.set_inheritable(fd, False)  # an app started by this sidecar must not keep the engine locked
        info = read_holder(data_dir) or {}
        lock = cls(fd, data_dir, {**info, "sidecar_pid": os.getpid()})
        lock._write()
        return lock

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the data directory lock was released")
        return self._fd

    def release(self) -> None:
        """Close our descriptor. Never `LOCK_UN`: a lock shared with `up` must stay held while `up` lives."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _write(self) -> None:
        data = json.dumps(self.info).encode()
        fd = self.fileno()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))


def read_holder(data_dir: Path) -> dict[str, Any] | None:
    """What the lock file says about its (last) holder; None if it says nothing readable."""
    deadline = time.monotonic() + _HOLDER_READ_SECONDS
    while True:
        with contextlib.suppress(OSError, ValueError):
            found = json.loads((data_dir / LOCK_FILE).read_bytes())
            if isinstance(found, dict) and isinstance(found.get("pid"), int):
                return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def read_dev_clock(data_dir: Path) -> float | None:
    """The stored dev-clock offset (seconds ahead of wall time), or None if none is stored."""
    try:
        return float(json.loads((data_dir / DEV_CLOCK_FILE).read_text())["offset_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_dev_clock(data_dir: Path, offset_seconds: float) -> None:
    """Store the dev-clock offset atomically: a crash leaves the old value or the new one."""
    path = data_dir / DEV_CLOCK_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"offset_seconds": offset_seconds}))
    os.replace(tmp, path)
