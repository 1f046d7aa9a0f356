"""The sender's address guard at delivery time, over real sockets: a name that resolves to loopback is
refused by the connection's own resolver (nothing is sent), and a literal private address before that."""

from __future__ import annotations

import datetime as dt

from api.webhooks.guard import AddressPolicy
from api.webhooks.sender import WebhookSender
from tests.webhooks.receiver import Receiver

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_a_name_resolving_to_loopback_is_refused_when_connecting(hook_receiver: Receiver) -> None:
    port = hook_receiver.url.rsplit(":", 1)[1]
    strict = WebhookSender(AddressPolicy(allow_private=False), timeout_seconds=5)
    lenient = WebhookSender(AddressPolicy(allow_private=True), timeout_seconds=5)
    try:
        by_name = await strict.send(f"https://localhost:{port}/in", ["whsec_AAAA"], "msg_1", b"{}", NOW)
        literal = await strict.send(f"https://127.0.0.1:{port}/in", ["whsec_AAAA"], "msg_2", b"{}", NOW)
        allowed = await lenient.send(f"http://localhost:{port}/in", ["whsec_AAAA"], "msg_3", b"{}", NOW)
    finally:
        await strict.aclose()
        await lenient.aclose()
    assert by_name.outcome == "refused" and "not a public address" in (by_name.error or ""), by_name
    assert literal.outcome == "refused" and "127.0.0.1" in (literal.error or ""), literal
    assert (allowed.outcome, allowed.status_code) == ("delivered", 200)
    assert [r.headers["webhook-id"] for r in hook_receiver.at("/in")] == ["msg_3"]
