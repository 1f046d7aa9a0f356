"""`todo-engine sidecar run` as a process: the app command gets daprd's variables and both stop together;
the dev clock survives a restart; the metrics port answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from api.process.cli import main as cli_main
from tests.harness import wait_for


def _run(tmp: Path, *extra: str, app: list[str] | None = None) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "sidecar",
        "run",
        "--app-id",
        "cli-test",
        "--dapr-http-port",
        "0",
        "--dapr-grpc-port",
        "0",
        "--data-dir",
        str(tmp / "data"),
        "--port-file",
        str(tmp / "ports.json"),
        "--log-level",
        "warn",
        *extra,
    ]
    if app:
        cmd += ["--", *app]
    return subprocess.Popen(cmd)


def test_app_command_gets_dapr_variables_and_its_exit_code_ends_the_run(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    script = (
        "import json, os, sys; "
        f"json.dump({{k: os.environ.get(k) for k in ('DAPR_HTTP_PORT', 'DAPR_GRPC_PORT', 'APP_ID')}}, "
        f"open({str(out)!r}, 'w')); sys.exit(3)"
    )
    proc = _run(tmp_path, app=[sys.executable, "-c", script])
    assert proc.wait(60) == 3
    env = json.loads(out.read_text())
    ports = json.loads((tmp_path / "ports.json").read_text())
    assert env == {
        "DAPR_HTTP_PORT": str(ports["http"]),
        "DAPR_GRPC_PORT": str(ports["grpc"]),
        "APP_ID": "cli-test",
    }


def test_dev_clock_advances_and_survives_restart(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--dev-clock")
    try:
        wait_for((tmp_path / "ports.json").exists, timeout=30)
        base = f"http://127.0.0.1:{json.loads((tmp_path / 'ports.json').read_text())['http']}"
        r = httpx.post(f"{base}/v1.0-dev/clock/advance", json={"seconds": 86400})
        assert r.status_code == 200 and r.json()["offset_seconds"] == 86400
        bad = httpx.post(f"{base}/v1.0-dev/clock/advance", json={"seconds": -1})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    (tmp_path / "ports.json").unlink()
    proc = _run(tmp_path, "--dev-clock")
    try:
        wait_for((tmp_path / "ports.json").exists, timeout=30)
        base = f"http://127.0.0.1:{json.loads((tmp_path / 'ports.json').read_text())['http']}"
        assert httpx.get(f"{base}/v1.0-dev/clock").json()["offset_seconds"] >= 86400
    finally:
        proc.terminate()
        proc.wait(30)


def test_without_dev_clock_no_clock_routes_and_metrics_are_served(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--metrics-port", "0")
    try:
        wait_for((tmp_path / "ports.json").exists, timeout=30)
        ports = json.loads((tmp_path / "ports.json").read_text())
        assert httpx.get(f"http://127.0.0.1:{ports['http']}/v1.0-dev/clock").status_code == 404
        metrics = httpx.get(f"http://127.0.0.1:{ports['metrics']}/metrics")
        assert metrics.status_code == 200
        assert 'dapr_scheduler_jobs{app_id="cli-test"} 0' in metrics.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_bad_component_file_stops_startup_with_a_clear_error(tmp_path: Path) -> None:
    res = tmp_path / "res"
    res.mkdir()
    (res / "kafka.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: bus\n"
        "spec:\n  type: pubsub.kafka\n  version: v1\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "run",
            "--dapr-http-port",
            "0",
            "--dapr-grpc-port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
            "--resources-path",
            str(res),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "pubsub.kafka" in proc.stderr and "kafka.yaml" in proc.stderr


def test_top_level_cli_help_and_unknown_command(capsys: object) -> None:
    assert cli_main(["--help"]) == 0
    assert cli_main(["nope"]) == 2
