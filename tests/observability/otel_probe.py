"""Run by the OTel tests in a fresh interpreter (`python -m tests.observability.otel_probe DATA_DIR
TRACEPARENT`): boots the sidecar and both apps with OTel settings read from the environment, as
`todo-engine serve` does, sends one traced request, stops, and prints which OpenTelemetry modules it
imported (JSON on stdout)."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import httpx

from api.app import create_app
from api.channel.app import create_channel_app
from api.process.serve import bind
from api.process.settings import configure_dapr, load_settings
from api.process.shared import Shared
from sidecar import SidecarConfig
from sidecar.thread import SidecarThread
from tests.harness import ServedApp


def main(data: Path, traceparent: str) -> None:
    channel_sock = bind("127.0.0.1", 0)
    app_token = secrets.token_urlsafe(24)
    settings = load_settings(
        os.environ,
        app_api_token=app_token,
        jwt_secret=secrets.token_urlsafe(40),
        channel_port=channel_sock.getsockname()[1],
    )
    sidecar = SidecarThread(
        SidecarConfig(
            app_id=settings.app_id,
            app_port=channel_sock.getsockname()[1],
            http_port=0,
            grpc_port=0,
            data_dir=data,
            app_token=app_token,
        )
    ).start()
    settings = settings.model_copy(
        update={"dapr_http_port": sidecar.http_port, "dapr_grpc_port": sidecar.grpc_port}
    )
    configure_dapr(settings)
    shared = Shared()
    channel = ServedApp(create_channel_app(settings, shared=shared), channel_sock).start()
    public = ServedApp(create_app(settings, shared=shared), bind("127.0.0.1", 0)).start()
    try:
        sidecar.wait_ready()
        status = httpx.get(f"{public.url}/health/live", headers={"traceparent": traceparent}).status_code
    finally:
        public.stop()  # the lifespan's end flushes queued spans
        sidecar.stop()
        channel.stop()
    modules = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    sys.stdout.write(json.dumps({"status": status, "modules": modules}) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
