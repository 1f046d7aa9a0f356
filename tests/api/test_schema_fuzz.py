"""Property-based requests generated from the app's own OpenAPI document (schemathesis), authenticated,
against the real stack: no 5xx, and every response conforms to the documented status codes, content
types and schemas.

`TODO_FUZZ_REQUESTS` sets how many requests to send (default 1,000); raise it for a longer run.
"""

from __future__ import annotations

import math
import os
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Stack, new_item, new_list

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Streams never end, and the dev clock is shared by every test of the run.
SKIPPED = {("GET", "/v1/events"), ("GET", "/v1/dev/clock"), ("POST", "/v1/dev/clock:advance")}


def test_generated_requests_conform(stack: Stack, user: str) -> None:
    total = int(os.environ.get("TODO_FUZZ_REQUESTS", "1000"))
    with stack.client(user) as c:
        list_id = new_list(c, "fuzz")["id"]
        item_id = new_item(c, list_id, "fuzz item", due={"date": "2030-01-01"})["id"]
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the app's OpenAPI document is invalid: {result.err()}"
        op = result.ok()
        if (op.method.upper(), op.path) not in SKIPPED:
            operations.append(op)
    # Deletes last (the list's delete very last), so the other operations can use the real list.
    operations.sort(key=lambda op: (op.method == "delete", op.path == "/v1/lists/{list_id}"))
    # Operations with inputs get the budget (a parameterless GET has one distinct request).
    fuzzable = [op for op in operations if op.path_parameters or op.query or op.body or op.method != "get"]
    per_operation = math.ceil(total / len(fuzzable) * 1.15)
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    sent: dict[str, int] = {}
    succeeded: set[str] = set()
    session = requests.Session()

    for op in operations:
        known: dict[str, Any] = {}
        if "list_id" in {p.name for p in op.path_parameters}:
            known["list_id"] = list_id
        if "item_id" in {p.name for p in op.path_parameters}:
            known["item_id"] = item_id
        strategies = [op.as_strategy(), op.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
        if known:
            # Half the cases hit a real list and item of this user, to get past the 404s.
            strategies.append(op.as_strategy(path_parameters=known))
        examples = per_operation if op in fuzzable else 5

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        @given(case=st.one_of(*strategies))
        def run(case: Any) -> None:
            response = case.call(base_url=stack.url, headers=headers, session=session, timeout=30)
            label = case.operation.label
            sent[label] = sent.get(label, 0) + 1
            if response.status_code < 300:
                succeeded.add(label)
            case.validate_response(response, checks=CHECKS, headers=headers)

        run()

    assert sum(sent.values()) >= total, sent
    # The generated requests got past validation into the actors, not only into 4xx answers.
    assert {
        "POST /v1/lists",
        "POST /v1/lists/{list_id}/items",
        "GET /v1/lists/{list_id}/items",
        "PATCH /v1/lists/{list_id}/items/{item_id}",
    } <= succeeded, succeeded
    # The stack is still healthy afterwards.
    assert httpx.get(f"{stack.url}/health/ready").status_code == 200
