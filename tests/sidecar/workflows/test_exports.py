"""The package's public surface: what the sidecar's composition root imports."""

from __future__ import annotations

import inspect

import sidecar.workflows as workflows


def test_exported_members() -> None:
    assert sorted(workflows.__all__) == [
        "GRPC_SERVER_OPTIONS",
        "WorkflowEngine",
        "WorkflowError",
        "add_workflow_service",
    ]
    for name in workflows.__all__:
        assert name.isupper() or getattr(workflows, name).__module__.startswith("sidecar.workflows")


def test_engine_seam_signature() -> None:
    params = inspect.signature(workflows.WorkflowEngine).parameters
    assert list(params)[:3] == ["db", "scheduler", "clock"]
    assert params["max_concurrent_workflows"].default is None
    assert params["max_concurrent_activities"].default is None
    assert params["max_concurrent_workflows"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(workflows.add_workflow_service).parameters) == ["server", "engine"]


def test_server_options_keep_sdk_streams_alive() -> None:
    options = dict(workflows.GRPC_SERVER_OPTIONS)
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_ping_strikes"] == 0
    assert options["grpc.http2.min_recv_ping_interval_without_data_ms"] <= 30_000
    assert options["grpc.max_receive_message_length"] == -1
