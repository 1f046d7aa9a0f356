"""The app beside real daprd loads none of the embedded sidecar's engines: what it shares with the sidecar
(the HTTP/1.1 client, the JSON log line, the GC policy) are leaves, and `sidecar/__init__` is lazy."""

from __future__ import annotations

import json
import subprocess
import sys

# What the app may load of `sidecar/`: standard-library leaves (and the package's own lazy `__init__`).
_LEAVES = {
    "sidecar",
    "sidecar.clock",
    "sidecar.config",
    "sidecar.datadir",
    "sidecar.heap",
    "sidecar.wire",
    "sidecar.wire.http1",
    "sidecar.wire.jsonlog",
}

_PROBE = """
import json, sys
import api.process.serve, api.app, api.channel.app, api.process.logs, workflows.hosting, todo_actors.host
from api.process.settings import load_settings
print(json.dumps(sorted(m for m in sys.modules if m == "sidecar" or m.startswith("sidecar."))))
"""


def test_importing_the_app_factories_loads_no_sidecar_engine() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "sidecar.wire.http1" in loaded  # the probe sees what the app imports
    assert loaded <= _LEAVES, f"the app loads sidecar modules beyond the leaves: {sorted(loaded - _LEAVES)}"
    assert "sidecar.server" not in loaded
