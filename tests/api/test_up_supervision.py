"""`todo-engine up` owns its data directory and its sidecar (issues 13, 14): a second `up`, sidecar or clock
change is refused naming the running engine, and kill -9 of `up` takes the sidecar down within 2 s."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.process.cli import main
from sidecar.datadir import DataDirLock, read_holder
from tests.api.test_cli import Up
from tests.harness import engine_env, up_command
from tests.sidecar.test_supervision import running

ROOT = Path(__file__).resolve().parents[2]


def _sidecar_pid(data: Path, up: Up) -> int:
    holder = read_holder(data)
    assert holder is not None and holder["pid"] == up.proc.pid and holder["command"] == "todo-engine up"
    pid = int(holder["sidecar_pid"])
    # The lock file names the sidecar `up` started: its child, in /proc too.
    children = Path(f"/proc/{up.proc.pid}/task/{up.proc.pid}/children").read_text().split()
    assert str(pid) in children
    return pid


def test_a_second_engine_on_the_same_dir_is_refused_naming_the_running_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    up = Up(data)
    try:
        sidecar = _sidecar_pid(data, up)
        port = re.search(r"http://127\.0\.0\.1:(\d+)/v1", up.banner)
        assert port
        # Same --port as the running one: a refusal that names the lock (not the busy port) came first.
        second = subprocess.run(
            [*up_command(data), "--port", port.group(1)],
            cwd=ROOT,
            env=engine_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert (
            f"in use by todo-engine up (pid {up.proc.pid}) and its sidecar (pid {sidecar})" in second.stderr
        )
        assert "cannot listen" not in second.stderr

        alone = subprocess.run(
            [sys.executable, "-m", "sidecar", "run", "--data-dir", str(data), "--dapr-http-port", "0"],
            env=engine_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert alone.returncode == 1 and f"todo-engine up (pid {up.proc.pid})" in alone.stderr

        assert main(["clock", "advance", "--data-dir", str(data), "60"]) == 1
        assert f"pid {up.proc.pid}" in capsys.readouterr().err
    finally:
        assert up.stop() == 0
    assert not running(sidecar)
    DataDirLock.acquire(data, "this test").release()  # a clean stop frees the directory


def test_kill_9_of_up_takes_its_sidecar_down_within_2_s(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = Up(data)
    sidecar = _sidecar_pid(data, up)
    try:
        assert running(sidecar)
        up.proc.send_signal(signal.SIGKILL)
        up.proc.wait(10)
        killed = time.monotonic()
        while running(sidecar) and time.monotonic() - killed < 2.0:
            time.sleep(0.01)
        assert not running(sidecar), "the sidecar outlived `todo-engine up` by 2 s"
    finally:
        if running(sidecar):  # do not leave an orphan behind a failed assertion
            subprocess.run(["kill", "-9", str(sidecar)], check=False)
    DataDirLock.acquire(data, "this test").release()  # nothing holds the directory any more
