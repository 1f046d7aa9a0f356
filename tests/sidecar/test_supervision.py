"""A supervised sidecar stops when its parent dies, by kill -9 too: through the parent-death signal alone
and through the parent pipe alone (as where prctl is unavailable); it does not start for a parent gone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import wait_for

# The parent: starts the sidecar with one of the two mechanisms, says its pid, then waits to be killed.
# (The sidecar's stdout, -3 = DEVNULL, is not the test's pipe: reading it to EOF would wait for the sidecar.)
_PARENT = """
import os, subprocess, sys, time
mechanism, data, ports = sys.argv[1:]
cmd = [sys.executable, "-m", "sidecar", "run", "--dapr-http-port", "0", "--dapr-grpc-port", "0",
       "--data-dir", data, "--port-file", ports, "--log-level", "warn"]
if mechanism == "pipe":
    watch, alive = os.pipe()
    child = subprocess.Popen([*cmd, "--parent-pipe", str(watch)], pass_fds=(watch,), stdout=-3)
    os.close(watch)
else:
    child = subprocess.Popen([*cmd, "--parent-pid", str(os.getpid())], stdout=-3)
print(child.pid, flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie: a zombie runs no code and has closed its files (the data-dir lock too)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("mechanism", ["pipe", "pdeathsig"])
def test_the_sidecar_stops_within_2_s_of_its_parent_being_killed(tmp_path: Path, mechanism: str) -> None:
    ports = tmp_path / "ports.json"
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, mechanism, str(tmp_path / "data"), str(ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    sidecar = int(parent.stdout.readline())
    try:
        wait_for(ports.exists, timeout=30)
        assert json.loads(ports.read_text())["http"] > 0 and running(sidecar)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        killed = time.monotonic()
        while running(sidecar) and time.monotonic() - killed < 2.0:
            time.sleep(0.01)
        assert not running(sidecar), f"the sidecar outlived its parent by 2 s ({mechanism})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if running(sidecar):
            subprocess.run(["kill", "-9", str(sidecar)], check=False)


def test_a_parent_already_gone_means_no_start(tmp_path: Path) -> None:
    # Our parent is this test, not pid 1: as if the parent had died between fork and prctl.
    proc = subprocess.run(
        [sys.executable, "-m", "sidecar", "run", "--data-dir", str(tmp_path / "d"), "--parent-pid", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "the parent process (pid 1) is gone" in proc.stderr
    assert not (tmp_path / "d").exists()  # refused before touching the data directory


def test_help_documents_the_supervision_flags() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", "run", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for flag in ("--parent-pid", "--parent-pipe", "--data-dir-lock-fd"):
        assert flag in out


def test_a_parent_that_dies_during_start_up_stops_the_start(tmp_path: Path) -> None:
    # The parent exits right after the spawn: the pipe is at EOF before the sidecar has started.
    ports = tmp_path / "ports.json"
    parent = subprocess.run(
        [sys.executable, "-c", _PARENT.replace("time.sleep(120)", ""), "pipe", str(tmp_path), str(ports)],
        stdout=subprocess.PIPE,  # stderr not captured: the sidecar shares it and would hold it open
        text=True,
        timeout=60,
    )
    sidecar = int(parent.stdout)
    try:
        wait_for(lambda: not running(sidecar), timeout=10)
        assert not ports.exists()
    finally:
        if running(sidecar):
            subprocess.run(["kill", "-9", str(sidecar)], check=False)
