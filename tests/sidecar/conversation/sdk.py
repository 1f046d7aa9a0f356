"""The SDK's client on one of the conversation tests' sidecars."""

from __future__ import annotations

from dapr.clients import DaprClient

from sidecar.thread import SidecarThread
from tests.harness import use_sidecar


def client(thread: SidecarThread) -> DaprClient:
    """The SDK's client on `thread` (its health check, too, asks that sidecar)."""
    use_sidecar(thread.http_port, thread.grpc_port)
    return DaprClient(f"127.0.0.1:{thread.grpc_port}")
