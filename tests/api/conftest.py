"""One real stack for the API tests: the embedded sidecar (own thread, manual clock, temp SQLite, tokens
on both sides), the app channel and the public API, each served by uvicorn on loopback.

Package-scoped: the SDK's actor runtime is process-global, so this stack's registrations must be done
(and its servers gone) before another suite registers its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from api.channel.app import create_channel_app
from api.process.serve import bind
from api.process.settings import Settings, configure_dapr, load_settings
from api.process.shared import Shared
from sidecar import ManualClock, SidecarConfig
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, wait_for


@dataclass
class Stack:
    settings: Settings
    sidecar: SidecarThread
    channel: ServedApp
    public: ServedApp
    clock: ManualClock
    jwt_secret: str
    app_token: str

    @property
    def url(self) -> str:
        return self.public.url

    def token(self, user: str) -> str:
        return mint_token(self.jwt_secret, user, now=int(time.time()), ttl_seconds=3600)

    def client(self, user: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def async_client(self, user: str, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)

    def serve_public(self, **overrides: Any) -> ServedApp:
        """Another public app on the same sidecar, with some settings changed (stop it when done)."""
        settings = self.settings.model_copy(update=overrides)
        return ServedApp(create_app(settings), bind("127.0.0.1", 0)).start()


def stack_settings(**overrides: Any) -> tuple[Settings, str, str]:
    jwt_secret = secrets.token_urlsafe(40)
    app_token = secrets.token_urlsafe(24)
    values: dict[str, Any] = {
        "app_api_token": app_token,
        "jwt_secret": jwt_secret,
        "dapr_api_token": secrets.token_urlsafe(24),
        "dev_clock": True,
        "rate_limit_per_second": 10_000,
        "rate_limit_burst": 10_000,
        "sse_keepalive_seconds": 0.5,
        "sse_poll_seconds": 0.2,
        **overrides,
    }
    return load_settings({}, **values), jwt_secret, app_token


@contextlib.contextmanager
def running_stack(
    data: Path, *, app_id: str = "todo-engine", public_server: type[ServedApp] = ServedApp, **overrides: Any
) -> Iterator[Stack]:
    """Sidecar (own thread, manual clock), app channel and public API on loopback, for one suite."""
    channel_sock = bind("127.0.0.1", 0)
    settings, jwt_secret, app_token = stack_settings(
        channel_port=channel_sock.getsockname()[1], app_id=app_id, **overrides
    )
    clock = ManualClock()
    sidecar = SidecarThread(
        SidecarConfig(
            app_id=app_id,
            app_port=channel_sock.getsockname()[1],
            http_port=0,
            grpc_port=0,
            data_dir=data,
            api_token=settings.dapr_token,
            app_token=app_token,
        ),
        clock=clock,
    ).start()
    settings = settings.model_copy(
        update={"dapr_http_port": sidecar.http_port, "dapr_grpc_port": sidecar.grpc_port}
    )
    configure_dapr(settings)
    shared = Shared()

    def actors_now() -> dt.datetime:
        return dt.datetime.fromtimestamp(clock.now(), dt.UTC)

    channel = ServedApp(create_channel_app(settings, shared=shared, clock=actors_now), channel_sock).start()
    public = public_server(create_app(settings, shared=shared), bind("127.0.0.1", 0)).start()
    try:
        sidecar.wait_ready()
        yield Stack(settings, sidecar, channel, public, clock, jwt_secret, app_token)
    finally:
        public.stop()
        sidecar.stop()  # before the channel: it deactivates actors through it
        channel.stop()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("api-sidecar")) as running:
        yield running


@pytest.fixture(autouse=True)
def _this_sidecar(stack: Stack) -> None:
    configure_dapr(stack.settings)


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(stack: Stack, user: str) -> Iterator[httpx.Client]:
    with stack.client(user) as c:
        yield c


def new_list(client: httpx.Client, title: str = "groceries", **fields: Any) -> dict[str, Any]:
    r = client.post("/v1/lists", json={"title": title, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def new_item(client: httpx.Client, list_id: str, title: str = "milk", **fields: Any) -> dict[str, Any]:
    r = client.post(f"/v1/lists/{list_id}/items", json={"title": title, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def changes(client: httpx.Client, since: str = "0") -> list[dict[str, Any]]:
    """Every event in the caller's feed after `since`, following pages."""
    out: list[dict[str, Any]] = []
    while True:
        r = client.get("/v1/changes", params={"since": since, "limit": 500})
        assert r.status_code == 200, r.text
        page = r.json()
        out += page["events"]
        since = page["next_cursor"]
        if not page["has_more"]:
            return out


def wait_for_events(
    client: httpx.Client, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 10
) -> list[dict[str, Any]]:
    """Wait until at least `count` feed events match (events are delivered asynchronously)."""

    def found() -> list[dict[str, Any]] | None:
        matching = [e for e in changes(client) if predicate(e)]
        return matching if len(matching) >= count else None

    result: list[dict[str, Any]] = wait_for(found, timeout=timeout, interval=0.05)
    return result
