"""The webhooks suite's stack: private targets allowed (the receiver is on loopback), and a short retry
schedule (3 attempts, disabled after 2 failed deliveries) so the tests walk through it quickly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack import stack_fixture
from tests.webhooks.calls import WEBHOOK_SETTINGS
from tests.webhooks.receiver import Receiver, receiver

stack = stack_fixture("webhooks-sidecar", lambda request: dict(WEBHOOK_SETTINGS))


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    with receiver() as got:
        yield got
