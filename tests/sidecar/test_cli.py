"""`todo-engine sidecar run` as a process: the app command gets daprd's variables and both stop together;
the dev clock survives a restart; the metrics port answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.process.cli import main as cli_main
from sidecar.flags import build_parser, config_from_args
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


def test_app_command_gets_dapr_run_environment_with_grpc_protocol(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    names = (
        "APP_ID",
        "APP_PORT",
        "APP_PROTOCOL",
        "APP_CHANNEL_ADDRESS",
        "DAPR_HTTP_PORT",
        "DAPR_GRPC_PORT",
        "DAPR_METRICS_PORT",
        "APP_API_TOKEN",
    )
    script = (
        f"import json, os; json.dump({{k: os.environ.get(k) for k in {names!r}}}, open({str(out)!r}, 'w'))"
    )
    cmd = [sys.executable, "-m", "sidecar", "run", "--app-id", "env-test", "--app-port", "1"]
    cmd += ["--app-protocol", "grpc", "--dapr-http-port", "0", "--dapr-grpc-port", "0", "--metrics-port", "0"]
    cmd += ["--data-dir", str(tmp_path / "data"), "--port-file", str(tmp_path / "ports.json")]
    cmd += ["--placement-host-address", "localhost:50005", "--enable-app-health-check", "--log-level", "warn"]
    env = {**os.environ, "APP_API_TOKEN": "app-secret"}
    assert subprocess.run([*cmd, "--", sys.executable, "-c", script], env=env, timeout=60).returncode == 0
    ports = json.loads((tmp_path / "ports.json").read_text())
    assert json.loads(out.read_text()) == {
        "APP_ID": "env-test",
        "APP_PORT": "1",
        "APP_PROTOCOL": "grpc",
        "APP_CHANNEL_ADDRESS": "127.0.0.1",
        "DAPR_HTTP_PORT": str(ports["http"]),
        "DAPR_GRPC_PORT": str(ports["grpc"]),
        "DAPR_METRICS_PORT": str(ports["metrics"]),
        "APP_API_TOKEN": "app-secret",
    }


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--app-protocol", "grpcs"], "TLS to the app is not supported"),
        (["--app-protocol", "h2c"], "HTTP/2 cleartext"),
        (["--app-ssl"], "--app-ssl is not supported"),
        (["--enable-profiling"], "--enable-profiling is not supported"),
        (["--max-body-size", "lots"], "expected a size such as 4Mi"),
    ],
)
def test_unsupported_dapr_run_flags_are_refused_by_name(flags: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        config_from_args(build_parser().parse_args(flags), {})
    assert message in str(exc.value)


def test_dapr_run_flags_reach_the_config() -> None:
    args = build_parser().parse_args(
        "--enable-app-health-check --app-health-check-path /ready --app-health-probe-interval 2 "
        "--app-health-probe-timeout 250 --app-health-threshold 4 --app-max-concurrency 8 "
        "--max-body-size 8Mi --read-buffer-size 8Ki".split()
    )
    cfg = config_from_args(args, {})
    assert (cfg.app_health_check, cfg.app_health_check_path) == (True, "/ready")
    assert (cfg.app_health_probe_interval, cfg.app_health_probe_timeout, cfg.app_health_threshold) == (
        2,
        0.25,
        4,
    )
    assert (cfg.app_max_concurrency, cfg.max_body_bytes) == (8, 8 * 1024 * 1024)
