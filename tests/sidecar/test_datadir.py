"""One engine per data directory (issue 14): a second sidecar is refused naming the holder, a lock left by a
dead process never blocks, and `todo-engine clock advance` moves a stopped engine's dev clock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.process.cli import main as cli_main
from sidecar.datadir import LOCK_FILE, DataDirBusy, DataDirLock, read_holder
from tests.harness import wait_for
from tests.sidecar.test_cli import _run as start_sidecar  # data in tmp/data, ports in tmp/ports.json
from tests.stack import sidecar_thread


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def _http_base(ports: Path) -> str:
    wait_for(ports.exists, timeout=30)
    return f"http://127.0.0.1:{json.loads(ports.read_text())['http']}"


def test_a_second_sidecar_on_the_same_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_sidecar(tmp_path)
    try:
        _http_base(tmp_path / "ports.json")
        assert read_holder(data) == {"pid": first.pid, "command": "todo-engine sidecar run"}
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "sidecar", "run", "--data-dir", str(data), "--dapr-http-port", "0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"in use by todo-engine sidecar run (pid {first.pid})" in second.stderr, second.stderr
        assert time.monotonic() - started < 10  # refused at once: no engine was started
    finally:
        assert _stop(first) == 0


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    data = tmp_path / "data"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from sidecar.datadir import DataDirLock; "
            "DataDirLock.acquire(Path(sys.argv[1]), 'a test holder'); print('locked', flush=True); "
            "time.sleep(60)",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(DataDirBusy, match=f"in use by a test holder \\(pid {holder.pid}\\)"):
            DataDirLock.acquire(data, "this test")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert json.loads((data / LOCK_FILE).read_text())["pid"] == holder.pid  # the stale file is still there
    proc = start_sidecar(tmp_path)
    try:
        assert httpx.get(f"{_http_base(tmp_path / 'ports.json')}/v1.0/healthz/outbound").status_code == 204
        assert read_holder(data) == {"pid": proc.pid, "command": "todo-engine sidecar run"}
    finally:
        assert _stop(proc) == 0


def test_in_process_sidecars_lock_in_start_and_release_in_stop(tmp_path: Path) -> None:
    with sidecar_thread(tmp_path / "data"):
        with pytest.raises(DataDirBusy, match=f"in use by an in-process sidecar \\(pid {os.getpid()}\\)"):
            sidecar_thread(tmp_path / "data").start()
    DataDirLock.acquire(tmp_path / "data", "this test").release()
    with sidecar_thread(tmp_path / "data"):  # the same directory again, after a clean stop
        pass


def test_clock_advance_moves_a_stopped_engines_clock_and_is_refused_while_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, ports = tmp_path / "data", tmp_path / "ports.json"
    proc = start_sidecar(tmp_path, "--dev-clock")
    try:
        base = _http_base(ports)
        assert httpx.post(f"{base}/v1.0-dev/clock/advance", json={"seconds": 60}).status_code == 200
        assert cli_main(["clock", "advance", "--data-dir", str(data), "3600"]) == 1
        assert f"pid {proc.pid}" in capsys.readouterr().err
    finally:
        assert _stop(proc) == 0
    assert json.loads((data / "dev-clock.json").read_text()) == {"offset_seconds": 60}

    assert cli_main(["clock", "advance", "--data-dir", str(data), "86400"]) == 0
    out = capsys.readouterr().out
    assert "dev clock offset: +86460.000 s" in out and "stands for: " in out
    assert cli_main(["clock", "show", "--data-dir", str(data)]) == 0
    assert "+86460.000 s" in capsys.readouterr().out

    ports.unlink()
    proc = start_sidecar(tmp_path, "--dev-clock")
    try:
        clock = httpx.get(f"{_http_base(ports)}/v1.0-dev/clock").json()
        assert clock["offset_seconds"] == 86460
        assert abs(clock["now"] - (time.time() + 86460)) < 60
    finally:
        assert _stop(proc) == 0


@pytest.mark.parametrize("seconds", ["-5", "nan", "inf", "soon", "1e300"])
def test_clock_advance_refuses_bad_seconds(tmp_path: Path, seconds: str) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["clock", "advance", "--data-dir", str(tmp_path), seconds])
    assert exc.value.code == 2
    assert not (tmp_path / "dev-clock.json").exists()


def test_clock_needs_an_existing_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["clock", "show", "--data-dir", str(tmp_path / "none")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_help_lists_the_clock_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    assert "clock show --data-dir DIR | clock advance --data-dir DIR SECONDS" in capsys.readouterr().out
