"""schemathesis, all checks, against the real stack (embedded sidecar, real SQLite): every response
conforms to the app's own OpenAPI document (statuses, content types, schemas, headers, `Allow`), no 5xx,
schema-valid requests are accepted and schema-invalid ones refused.

The run is schemathesis' own command line (as a client would run it) with `tests/api/fuzz_hooks.py`
for the state a generated request cannot know. The default run is small (examples and fuzzing, ~10 per
operation); the slow one adds the coverage phase (undeclared methods, `OPTIONS`, boundary values) and
stateful sequences, and sends >= 10,000 requests (`TODO_FUZZ_EXAMPLES`: examples per operation).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Stack, new_item, new_list
from tests.harness import ServedApp

# Streams never end, and the dev clock is shared by every test of the run.
_EXCLUDED = ("/v1/events", "/v1/dev/clock:advance")
# A stale but well-formed ETag is answered 412 by design: `If-Match` is state, like an id (404).
_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429"]
"""


@pytest.fixture
def admin_app(stack: Stack, user: str) -> Iterator[ServedApp]:
    """The public API with the fuzzing user an administrator, so the admin routes answer too (and webhooks
    may target loopback: see fuzz_hooks)."""
    served = stack.serve_public(admin_users=frozenset({user}), webhooks_allow_private=True)
    try:
        yield served
    finally:
        served.stop()


def run_schemathesis(
    stack: Stack, url: str, user: str, tmp: Path, *, examples: int, phases: str
) -> tuple[int, str]:
    """Run the CLI with every check; the number of test cases it generated, and its output."""
    with stack.client(user) as c:
        for title in ("fuzz", "fuzz 2"):
            list_id = new_list(c, title)["id"]
        items = [new_item(c, list_id, f"item {n}", due={"date": "2030-01-01"})["id"] for n in range(2)]
        lists_cursor = c.get("/v1/lists", params={"limit": 1}).json()["next_cursor"]
        items_cursor = c.get(f"/v1/lists/{list_id}/items", params={"limit": 1}).json()["next_cursor"]
    state = {
        "list_id": list_id,
        "item_id": items[0],
        "lists_cursor": lists_cursor,
        "items_cursor": items_cursor,
    }
    config = tmp / "schemathesis.toml"
    config.write_text(_CONFIG)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(examples),
        "--header",
        f"Authorization: Bearer {stack.token(user)}",
        "--request-timeout",
        "30",
        "--workers",
        "1",  # one worker: the hooks' random choices then come in a fixed order, so a seed is a run
        "--seed",
        "1",
        "--continue-on-failure",
        "--no-color",
    ]
    for path in _EXCLUDED:
        command += ["--exclude-path", path]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks",
        "TODO_FUZZ_STATE": json.dumps(state),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    log = tmp / "schemathesis.out"
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3000, cwd=tmp)
    output = log.read_text()
    generated = re.search(r"(\d+) generated", output)
    assert done.returncode == 0, output[-20_000:]
    assert generated is not None, output[-5_000:]
    return int(generated.group(1)), output


def test_generated_requests_conform(stack: Stack, admin_app: ServedApp, user: str, tmp_path: Path) -> None:
    examples = int(os.environ.get("TODO_FUZZ_EXAMPLES", "10"))
    generated, output = run_schemathesis(
        stack, admin_app.url, user, tmp_path, examples=examples, phases="examples,fuzzing"
    )
    assert generated >= 300, output[-3_000:]
    assert httpx.get(f"{admin_app.url}/health/ready").status_code == 200


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_ten_thousand_generated_requests_conform(
    stack: Stack, admin_app: ServedApp, user: str, tmp_path: Path
) -> None:
    examples = int(os.environ.get("TODO_FUZZ_EXAMPLES", "250"))
    generated, output = run_schemathesis(
        stack, admin_app.url, user, tmp_path, examples=examples, phases="examples,coverage,fuzzing,stateful"
    )
    assert generated >= 10_000, output[-3_000:]
    assert httpx.get(f"{admin_app.url}/health/ready").status_code == 200
