"""A webhook delivery across a full restart of the engine (sidecar and app) on the same data dir: the
registration, the delivery workflow and its pending retry timer are all on disk. Its own directory, so no
other suite's stack is up while this test boots two in turn."""

from __future__ import annotations

from pathlib import Path

from tests.stack import running_stack
from tests.webhooks.calls import WEBHOOK_SETTINGS, add_item, advance, register, wait_attempts
from tests.webhooks.receiver import receiver, verifies


def test_a_delivery_survives_a_restart_of_sidecar_and_app(tmp_path: Path) -> None:
    data = tmp_path / "engine"
    data.mkdir()
    with receiver() as hook_receiver:
        with running_stack(data, **WEBHOOK_SETTINGS) as stack, stack.client("alice") as client:
            hook = register(client, hook_receiver.url + "/in")
            hook_receiver.fail_next(503)
            add_item(client)
            (first,) = wait_attempts(client, hook["id"], 1)
            assert (first["outcome"], first["status_code"]) == ("retry", 503)
        assert len(hook_receiver.at("/in")) == 1
        with running_stack(data, **WEBHOOK_SETTINGS) as stack, stack.client("alice") as client:
            advance(client, 10)  # the first backoff: the timer stored before the restart fires
            made = wait_attempts(client, hook["id"], 2)
            assert [(a["attempt"], a["outcome"]) for a in made] == [(1, "retry"), (2, "delivered")]
    got = hook_receiver.at("/in")
    assert len(got) == 2 and got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    assert all(verifies(hook["secret"], r) for r in got)
