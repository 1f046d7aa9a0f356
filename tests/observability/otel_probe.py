"""Run by the OTel tests in a fresh interpreter (`python -m tests.observability.otel_probe DATA_DIR
TRACEPARENT`): boots the sidecar and both apps with OTel settings read from the environment, as
`todo-engine serve` does, sends one traced request, stops, and prints which OpenTelemetry modules it
imported (JSON on stdout)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

from tests.stack import running_stack


def main(data: Path, traceparent: str) -> None:
    with running_stack(data, environ=os.environ) as stack:
        # Leaving the stack stops the public app first: its lifespan's end flushes queued spans.
        status = httpx.get(f"{stack.url}/health/live", headers={"traceparent": traceparent}).status_code
    modules = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    sys.stdout.write(json.dumps({"status": status, "modules": modules}) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
