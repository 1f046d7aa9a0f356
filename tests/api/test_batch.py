"""`POST /v1/batch` over the real stack: one actor turn for a list's commands, temp ids across commands,
replay by uuid (claimed and recorded in bulk, new and seen uuids mixed), each command answering on its
own, the size limit, and another user's list."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

import httpx
from dapr.aio.clients import DaprClient

from api.middleware.idempotency import IdempotencyStore
from tests.api.conftest import Stack, new_item, new_list

log = logging.getLogger("tests.api.test_batch")


def cmd(
    type_: str, args: dict[str, Any], temp_id: str | None = None, uid: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "uuid": uid or uuid.uuid4().hex, "args": args}
    if temp_id is not None:
        out["temp_id"] = temp_id
    return out


def send(client: httpx.Client, commands: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/v1/batch", json={"commands": commands})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert len(body["results"]) == len(commands)
    return body


def actor_calls(stack: Stack, method: str) -> float:
    text = httpx.get(f"{stack.url}/metrics").text
    labels = f'actor_type="TodoListActor",method="{method}",outcome="ok"'
    found = re.findall(rf"todo_actor_calls_total{{{labels}}} ([0-9.e+]+)", text)
    return sum(float(v) for v in found)


def test_hundred_adds_on_one_list_are_one_actor_turn(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    other = new_list(client, "singles")["id"]
    before = actor_calls(stack, "Batch")
    started, cpu = time.perf_counter(), time.process_time()
    body = send(client, [cmd("item_add", {"list_id": list_id, "title": f"item {n}"}) for n in range(100)])
    batched, batched_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert actor_calls(stack, "Batch") - before == 1
    assert [r["status"] for r in body["results"]] == [201] * 100
    items = client.get(f"/v1/lists/{list_id}/items", params={"limit": 500}).json()
    assert [i["title"] for i in items["items"]] == [f"item {n}" for n in range(100)]
    assert items["list_version"] == 101  # each add is its own change (own version), saved together
    adds_before = actor_calls(stack, "AddTodo")
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(100):
        new_item(client, other, f"item {n}")
    singles, singles_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert actor_calls(stack, "AddTodo") - adds_before == 100
    # Times are logged, not asserted: the machine is shared, and the turns are the measure. The whole
    # stack runs in this process, so its CPU seconds are the figure that load disturbs least.
    log.info(
        "100 adds: one batch %.3fs (%.3f CPU s, 1 actor turn), 100 requests %.3fs (%.3f CPU s, 100 turns)",
        batched,
        batched_cpu,
        singles,
        singles_cpu,
    )


def test_temp_ids_link_a_list_its_items_and_a_subtask(client: httpx.Client) -> None:
    body = send(
        client,
        [
            cmd("list_add", {"title": "trip"}, temp_id="L"),
            cmd("item_add", {"list_id": "L", "title": "pack"}, temp_id="pack"),
            cmd("item_add", {"list_id": "L", "title": "socks", "parent_id": "pack"}, temp_id="socks"),
            cmd("item_complete", {"list_id": "L", "id": "socks"}),
            cmd("item_move", {"list_id": "L", "id": "socks", "parent_id": None}),
            cmd("list_update", {"id": "L", "title": "holiday"}),
        ],
    )
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [201, 201, 201, 200, 200, 200], body
    mapping = body["temp_id_mapping"]
    assert set(mapping) == {"L", "pack", "socks"}
    list_id = mapping["L"]
    assert body["results"][0]["list"]["id"] == list_id
    assert body["results"][2]["item"]["parent_id"] == mapping["pack"]
    socks = client.get(f"/v1/lists/{list_id}/items/{mapping['socks']}").json()
    assert socks["status"] == "completed" and socks["parent_id"] is None
    assert client.get(f"/v1/lists/{list_id}").json()["title"] == "holiday"
    assert list_id in [entry["id"] for entry in client.get("/v1/lists").json()["items"]]


def test_a_replayed_uuid_answers_the_first_result_without_applying_again(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    commands = [
        cmd("item_add", {"list_id": list_id, "title": "once"}, temp_id="t", uid="add-once"),
        cmd("item_update", {"list_id": list_id, "id": "t", "notes": "n"}, uid="note-once"),
    ]
    first = send(client, commands)
    again = send(client, [*commands, cmd("item_complete", {"list_id": list_id, "id": "t"})])
    assert [r["replayed"] for r in again["results"]] == [True, True, False]
    assert again["results"][0]["item"] == first["results"][0]["item"]
    assert again["temp_id_mapping"] == first["temp_id_mapping"]  # the replayed add still names its item
    assert again["results"][2]["status"] == 200 and again["results"][2]["item"]["status"] == "completed"
    items = client.get(f"/v1/lists/{list_id}/items").json()["items"]
    assert len(items) == 1 and items[0]["version"] == 3  # added, noted, completed: nothing twice
    reused = send(client, [cmd("item_add", {"list_id": list_id, "title": "other"}, uid="add-once")])
    assert reused["results"][0]["status"] == 422
    assert reused["results"][0]["error"]["type"] == "/problems/idempotency-key-reused"


def hold_as_in_progress(stack: Stack, user: str, command_uuid: str) -> None:
    """Turn a command's kept result back into the claim of a request still running (same fingerprint)."""

    async def rewrite() -> None:
        dapr = DaprClient(address=stack.settings.dapr_grpc_address)
        try:
            key = IdempotencyStore._key(user, f"batch {command_uuid}")
            record = json.loads((await dapr.get_state(stack.settings.state_store, key)).data)
            pending = {"state": "pending", "fingerprint": record["fingerprint"]}
            await dapr.save_state(stack.settings.state_store, key, json.dumps(pending))
        finally:
            await dapr.close()  # type: ignore[no-untyped-call]

    asyncio.run(rewrite())


def test_a_batch_mixing_new_seen_in_progress_and_reused_uuids(
    stack: Stack, client: httpx.Client, user: str
) -> None:
    """Any uuid seen before makes the bulk claim fail; each command still gets its own answer, the new
    ones are applied once and their results kept, the others are not applied."""
    list_id = new_list(client)["id"]
    seen = cmd("item_add", {"list_id": list_id, "title": "seen"})
    busy = cmd("item_add", {"list_id": list_id, "title": "busy"})
    misused = cmd("item_add", {"list_id": list_id, "title": "misused"})
    first = send(client, [seen, busy, misused])
    hold_as_in_progress(stack, user, busy["uuid"])
    # The new command before the held one is claimed by the bulk save before it fails (the embedded
    # sidecar saves a bulk in order, as daprd may); the one after it is claimed on its own.
    mixed = [
        cmd("item_add", {"list_id": list_id, "title": "new before"}),
        busy,
        cmd("item_add", {"list_id": list_id, "title": "new after"}),
        seen,
        {**misused, "args": {"list_id": list_id, "title": "another command"}},
    ]
    body = send(client, mixed)
    results = body["results"]
    assert [r["status"] for r in results] == [201, 409, 201, 201, 422], body
    assert [r["replayed"] for r in results] == [False, False, False, True, False]
    assert results[1]["error"]["type"] == "/problems/idempotency-in-progress"
    assert results[3]["item"] == first["results"][0]["item"]
    assert results[4]["error"]["type"] == "/problems/idempotency-key-reused"
    titles = sorted(i["title"] for i in client.get(f"/v1/lists/{list_id}/items").json()["items"])
    assert titles == ["busy", "misused", "new after", "new before", "seen"]
    # The new commands' results were kept: sent again, everything but the held claim replays.
    again = send(client, mixed)["results"]
    assert [r["status"] for r in again] == [201, 409, 201, 201, 422]
    assert [r["replayed"] for r in again] == [True, False, True, True, False]
    assert again[0]["item"] == results[0]["item"] and again[2]["item"] == results[2]["item"]
    assert len(client.get(f"/v1/lists/{list_id}/items").json()["items"]) == 5


def test_each_command_answers_on_its_own(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    body = send(
        client,
        [
            cmd("item_add", {"list_id": list_id, "title": "kept"}, temp_id="a"),
            cmd("item_update", {"list_id": list_id, "id": "nope", "title": "x"}),
            cmd("item_add", {"list_id": list_id, "title": "child", "parent_id": "nope"}),
            cmd("item_add", {"list_id": list_id, "title": "also kept"}, temp_id="a"),
            cmd("item_reopen", {"list_id": list_id, "id": "a"}),
            cmd("item_delete", {"list_id": list_id, "id": "a"}),
            cmd("list_delete", {"id": "no-such-list"}),
        ],
    )
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [201, 404, 409, 422, 200, 204, 404], body
    assert body["results"][1]["error"]["type"] == "/problems/not-found"
    assert body["results"][3]["error"]["errors"][0]["loc"] == ["temp_id"]
    assert body["temp_id_mapping"] == {"a": body["results"][0]["item"]["id"]}
    assert client.get(f"/v1/lists/{list_id}/items").json()["items"] == []


def test_more_than_a_hundred_commands_are_refused(client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    commands = [cmd("item_add", {"list_id": list_id, "title": f"{n}"}) for n in range(101)]
    r = client.post("/v1/batch", json={"commands": commands})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/v1/lists/{list_id}/items").json()["items"] == []


def test_a_null_that_the_document_refuses_refuses_the_batch(client: httpx.Client) -> None:
    # "Leave it out to keep it" fields: an explicit null is schema-invalid, so the whole request is a 422
    # (as any other invalid argument), not a 200 with the command's own 422.
    list_id = new_list(client)["id"]
    item_id = new_item(client, list_id, "a")["id"]
    for type_, args in (
        ("item_move", {"list_id": list_id, "id": item_id, "position": None}),
        ("item_update", {"list_id": list_id, "id": item_id, "title": None}),
        ("list_update", {"id": list_id, "tz": None}),
    ):
        r = client.post(
            "/v1/batch",
            json={"commands": [cmd("item_add", {"list_id": list_id, "title": "b"}), cmd(type_, args)]},
        )
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "/problems/validation-error"
    assert [i["title"] for i in client.get(f"/v1/lists/{list_id}/items").json()["items"]] == ["a"]
    moved = send(client, [cmd("item_move", {"list_id": list_id, "id": item_id, "parent_id": None})])
    assert moved["results"][0]["status"] == 200


def test_a_strangers_list_answers_404_in_its_own_result(stack: Stack, client: httpx.Client) -> None:
    with stack.client(f"stranger-{uuid.uuid4().hex[:8]}") as stranger:
        theirs = new_list(stranger)["id"]
        their_item = new_item(stranger, theirs)["id"]
        mine = new_list(client)["id"]
        body = send(
            client,
            [
                cmd("item_add", {"list_id": theirs, "title": "intrude"}),
                cmd("item_complete", {"list_id": theirs, "id": their_item}),
                cmd("list_update", {"id": theirs, "title": "mine now"}),
                cmd("list_delete", {"id": theirs}),
                cmd("item_add", {"list_id": mine, "title": "fine"}),
            ],
        )
        assert [r["status"] for r in body["results"]] == [404, 404, 404, 404, 201]
        assert stranger.get(f"/v1/lists/{theirs}").json()["title"] == "groceries"
        assert stranger.get(f"/v1/lists/{theirs}/items/{their_item}").json()["status"] == "open"


def test_a_batch_costs_one_rate_token_per_actor_turn(stack: Stack, user: str) -> None:
    served = stack.serve_public(rate_limit_per_second=0.001, rate_limit_burst=4)
    try:
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {stack.token(user)}"}) as c:
            first = c.post("/v1/batch", json={"commands": [cmd("list_add", {"title": "a"}, temp_id="a")]})
            assert first.status_code == 200, first.text
            list_id = first.json()["temp_id_mapping"]["a"]
            # three lists' turns (the adds on one list share one): 3 tokens, leaving none
            three = [cmd("list_update", {"id": list_id, "title": "b"})] + [
                cmd("item_add", {"list_id": list_id, "title": f"{n}"}) for n in range(50)
            ]
            three += [cmd("list_delete", {"id": "x"}), cmd("list_delete", {"id": "y"})]
            assert c.post("/v1/batch", json={"commands": three}).status_code == 200
            refused = c.post("/v1/batch", json={"commands": [cmd("list_delete", {"id": "z"})]})
            assert refused.status_code == 429 and "retry-after" in refused.headers
    finally:
        served.stop()
