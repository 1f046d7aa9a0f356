"""A durable broker shared by the sidecars of several apps: their `pubsub.embedded.sqlite` components name
one file, a publish through any sidecar reaches every app subscribed to its topic (a consumer group per app
id, as daprd's consumerID defaults to the app id), and a second replica of an app id is refused."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar import ManualClock
from sidecar.pubsub.sharing import consumer_id
from sidecar.thread import SidecarThread
from tests.harness import wait_for
from tests.sidecar.hosts.conftest import SHARED_PUBSUB
from tests.sidecar.pubsub.apps import RawApp, Recorder
from tests.stack import running_sidecar


def _subscriptions(*topics: str) -> list[dict[str, Any]]:
    return [{"pubsubname": "pubsub", "topic": t, "route": f"/{t}"} for t in topics]


class Apps:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.resources = tmp / "resources"
        self.resources.mkdir()
        (self.resources / "pubsub.yaml").write_text(SHARED_PUBSUB.format(path=tmp / "shared" / "pubsub.db"))
        self.clock = ManualClock()

    @contextlib.contextmanager
    def run(self, app_id: str, *topics: str) -> Iterator[tuple[SidecarThread, Recorder]]:
        recorder = Recorder()
        app = RawApp(recorder, subscribe_body=_subscriptions(*topics))
        data = self.tmp / f"{app_id}-{len(list(self.tmp.iterdir()))}"
        with running_sidecar(
            data, lambda _: app.build(), app_id=app_id, clock=self.clock, resources_paths=[self.resources]
        ) as (sidecar, _served):
            wait_for(lambda: _subscribed(sidecar, topics))
            yield sidecar, recorder


def _subscribed(sidecar: SidecarThread, topics: tuple[str, ...]) -> bool:
    with httpx.Client() as c:
        meta = c.get(f"http://127.0.0.1:{sidecar.http_port}/v1.0/metadata").json()
    return {s["topic"] for s in meta.get("subscriptions", [])} == set(topics)


def _publish(sidecar: SidecarThread, topic: str, data: str) -> None:
    with httpx.Client() as c:
        r = c.post(f"http://127.0.0.1:{sidecar.http_port}/v1.0/publish/pubsub/{topic}", json=data)
    assert r.status_code == 204, r.text


def _data(recorder: Recorder, path: str) -> list[str]:
    return [d.event["data"] for d in recorder.on(path)]


@pytest.fixture
def apps(tmp_path: Path) -> Apps:
    return Apps(tmp_path)


def test_a_publish_through_one_app_reaches_the_others(apps: Apps) -> None:
    with apps.run("orders", "orders", "news") as (a, orders), apps.run("shop", "news") as (b, shop):
        _publish(b, "orders", "o-1")
        wait_for(lambda: _data(orders, "/orders") == ["o-1"])
        # Each app's consumer group gets every message of a topic both subscribe to.
        for n in range(3):
            _publish(a if n % 2 else b, "news", f"n-{n}")
        wait_for(lambda: _data(orders, "/news") == ["n-0", "n-1", "n-2"])
        wait_for(lambda: _data(shop, "/news") == ["n-0", "n-1", "n-2"])
        assert _data(shop, "/orders") == []


def test_kept_for_an_app_that_is_down(apps: Apps) -> None:
    with apps.run("orders", "orders") as (_, first):
        pass  # its consumer group is now known in the shared file
    with apps.run("shop") as (b, _):
        _publish(b, "orders", "while-down")
    with apps.run("orders", "orders") as (_, again):
        wait_for(lambda: _data(again, "/orders") == ["while-down"])
    assert _data(first, "/orders") == []


def test_a_second_replica_of_an_app_id_is_refused(apps: Apps, caplog: pytest.LogCaptureFixture) -> None:
    with apps.run("orders", "orders") as (_, first), apps.run("shop") as (b, _):
        with caplog.at_level(logging.ERROR, logger="sidecar.pubsub.durable"):
            with apps.run("orders", "orders") as (_, second):
                assert "a second replica of one app id on a shared file is not supported" in caplog.text
                for n in range(3):
                    _publish(b, "orders", f"o-{n}")
                wait_for(lambda: _data(first, "/orders") == ["o-0", "o-1", "o-2"])
                assert _data(second, "/orders") == []


def test_consumer_id_names_the_consumer_group() -> None:
    """contrib's `consumerID`: the app id unless given, `{appID}` and `{namespace}` replaced."""
    assert consumer_id("pubsub", {}, "orders") == "orders"
    assert consumer_id("pubsub", {"consumerID": "{appID}-v2.{namespace}"}, "orders") == "orders-v2.default"
    with pytest.raises(ValueError, match=r"consumerID '\{podName\}': only \{appID\} and \{namespace\}"):
        consumer_id("pubsub", {"consumerid": "{podName}"}, "orders")
