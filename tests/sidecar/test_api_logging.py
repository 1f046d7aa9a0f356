"""daprd's API logging: `--enable-api-logging` or `spec.logging.apiLogging` in the Configuration log one
"HTTP API Called" / "gRPC API Called" line per call with daprd's fields; off by default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2
from google.protobuf import empty_pb2

from sidecar.flags import build_parser, config_from_args
from sidecar.wire.jsonlog import FIELDS, DaprJsonFormatter, TextFormatter
from tests.harness import wait_for
from tests.stack import sidecar_thread


def _calls(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, object]]:
    return [dict(getattr(r, FIELDS)) for r in caplog.records if r.getMessage() == message]


def _at_least(n: int, calls: list[dict[str, object]]) -> list[dict[str, object]] | None:
    return calls if len(calls) >= n else None


def _configuration(tmp_path: Path, api_logging: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\n"
        f"spec:\n  logging:\n    apiLogging:\n{api_logging}"
    )
    return path


def test_every_http_and_grpc_call_is_logged_with_daprds_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dapr.runtime")
    with sidecar_thread(tmp_path, app_id="logged", enable_api_logging=True) as sidecar:
        sidecar.wait_ready()
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0"
        assert httpx.get(f"{base}/metadata", headers={"user-agent": "probe/1"}).status_code == 200
        assert httpx.get(f"{base}/state/nostore/k").status_code == 400
        with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
            stub = dapr_pb2_grpc.DaprStub(channel)
            stub.GetMetadata(empty_pb2.Empty())
            with pytest.raises(grpc.RpcError):
                stub.GetState(state_pb2.GetStateRequest(store_name="nostore", key="k"))
        http = wait_for(
            lambda: len(_calls(caplog, "HTTP API Called")) >= 2 and _calls(caplog, "HTTP API Called")
        )
        grpc_calls = wait_for(
            lambda: len(_calls(caplog, "gRPC API Called")) >= 2 and _calls(caplog, "gRPC API Called")
        )
    metadata = next(c for c in http if c["method"] == "GET /v1.0/metadata")
    assert metadata["code"] == 200 and metadata["useragent"] == "probe/1"
    assert isinstance(metadata["size"], int) and metadata["size"] > 0
    assert isinstance(metadata["duration"], int) and metadata["duration"] >= 0
    assert next(c for c in http if c["method"] == "GET /v1.0/state/nostore/k")["code"] == 400
    by_method = {c["method"]: c for c in grpc_calls}
    assert by_method["/dapr.proto.runtime.v1.Dapr/GetMetadata"]["code"] == 0
    assert (
        by_method["/dapr.proto.runtime.v1.Dapr/GetState"]["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    )
    assert "grpc" in str(by_method["/dapr.proto.runtime.v1.Dapr/GetMetadata"]["useragent"])


def test_off_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dapr.runtime")
    with sidecar_thread(tmp_path, app_id="quiet") as sidecar:
        sidecar.wait_ready()
        assert httpx.get(f"http://127.0.0.1:{sidecar.http_port}/v1.0/metadata").status_code == 200
    assert _calls(caplog, "HTTP API Called") == []


def test_configuration_turns_it_on_and_can_omit_health_checks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dapr.runtime")
    config = _configuration(tmp_path, "      enabled: true\n      omitHealthChecks: true\n")
    with sidecar_thread(tmp_path / "data", app_id="conf", config_path=config) as sidecar:
        sidecar.wait_ready()
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0"
        assert httpx.get(f"{base}/healthz").status_code == 204
        assert httpx.get(f"{base}/metadata").status_code == 200
        methods = wait_for(lambda: [c["method"] for c in _calls(caplog, "HTTP API Called")])
    assert methods == ["GET /v1.0/metadata"]


def test_obfuscated_urls_are_refused_at_start(tmp_path: Path) -> None:
    config = _configuration(tmp_path, "      enabled: true\n      obfuscateURLs: true\n")
    with pytest.raises(ValueError, match="obfuscateURLs is not supported"):
        sidecar_thread(tmp_path / "data", app_id="refused", config_path=config).start()


def test_the_flag_and_the_line_formats() -> None:
    args = build_parser().parse_args(["--app-id", "a", "--enable-api-logging"])
    assert config_from_args(args, {}).enable_api_logging
    record = logging.LogRecord(
        "dapr.runtime.http-info", logging.INFO, __file__, 1, "HTTP API Called", None, None
    )
    setattr(record, FIELDS, {"method": "GET /v1.0/metadata", "code": 200, "useragent": "curl 8"})
    line = json.loads(DaprJsonFormatter("a").format(record))
    assert line["msg"] == "HTTP API Called" and line["method"] == "GET /v1.0/metadata" and line["code"] == 200
    text = TextFormatter("%(name)s: %(message)s").format(record)
    assert (
        text
        == 'dapr.runtime.http-info: HTTP API Called method="GET /v1.0/metadata" code=200 useragent="curl 8"'
    )
