"""The whole engine as the tests boot it in-process (the embedded sidecar on its own thread with a manual
clock, temp SQLite and tokens on both sides; the app channel and the public API, each served by uvicorn on
loopback), with options.

A suite takes a stack with `stack = stack_fixture(...)` in its conftest. Stacks are package-scoped: the
SDK's actor runtime is process-global, so one suite's registrations must be done (and its servers gone)
before another suite registers its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from api.channel.app import create_channel_app
from api.process.listeners import bind
from api.process.settings import Settings, configure_dapr, load_settings
from api.process.shared import Shared
from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import ServedApp
from tests.stack.sidecars import Restartable, restartable_sidecar

__all__ = ["Stack", "running_stack", "stack_fixture", "stack_settings"]


@dataclass
class Stack:
    settings: Settings
    sidecar: SidecarThread
    channel: ServedApp
    public: ServedApp
    clock: ManualClock
    jwt_secret: str
    app_token: str
    # The sidecar and channel as restartable parts (`tests.stack.sidecars.Restartable`).
    engine: Restartable | None = None

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

    def restart_channel(self, make_app: Callable[[SidecarThread], Any]) -> ServedApp:
        """The app channel (the series worker included) stopped and served again on its port, as
        `make_app(sidecar)` builds it: the engine's app process restarted."""
        assert self.engine is not None
        self.channel = self.engine.restart_app(make_app)
        return self.channel

    def serve_public(self, **overrides: Any) -> ServedApp:
        """Another public app on the same sidecar, with some settings changed (stop it when done)."""
        settings = self.settings.model_copy(update=overrides)
        return ServedApp(create_app(settings), bind("127.0.0.1", 0)).start()


def stack_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> tuple[Settings, str, str]:
    """Test settings (fresh secrets, dev clock, no practical rate limit); `environ` as the process's."""
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
    return load_settings(environ or {}, **values), jwt_secret, app_token


@contextlib.contextmanager
def running_stack(
    data: Path,
    *,
    app_id: str = "todo-engine",
    public_server: type[ServedApp] = ServedApp,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Iterator[Stack]:
    """Sidecar (own thread, manual clock), app channel and public API on loopback, for one suite;
    `overrides` are settings, `environ` the environment they are read from besides."""
    channel_sock = bind("127.0.0.1", 0)
    settings, jwt_secret, app_token = stack_settings(
        environ, channel_port=channel_sock.getsockname()[1], app_id=app_id, **overrides
    )
    clock = ManualClock()
    shared = Shared()

    def actors_now() -> dt.datetime:
        return dt.datetime.fromtimestamp(clock.now(), dt.UTC)

    def channel_app(sidecar: SidecarThread) -> Any:
        ports = {"dapr_http_port": sidecar.http_port, "dapr_grpc_port": sidecar.grpc_port}
        configure_dapr(settings.model_copy(update=ports))
        return create_channel_app(settings.model_copy(update=ports), shared=shared, clock=actors_now)

    with restartable_sidecar(
        data,
        channel_app,
        app_id=app_id,
        clock=clock,
        sock=channel_sock,
        api_token=settings.dapr_token,
        app_token=app_token,
    ) as engine:
        sidecar, channel = engine.sidecar, engine.app
        assert channel is not None
        settings = settings.model_copy(
            update={"dapr_http_port": sidecar.http_port, "dapr_grpc_port": sidecar.grpc_port}
        )
        public = public_server(create_app(settings, shared=shared), bind("127.0.0.1", 0)).start()
        try:
            yield Stack(settings, sidecar, channel, public, clock, jwt_secret, app_token, engine)
        finally:
            public.stop()


def stack_fixture(
    name: str = "stack", options: Callable[[pytest.FixtureRequest], dict[str, Any]] | None = None
) -> Any:
    """A package-scoped `stack` fixture; `options(request)` gives `running_stack`'s keyword arguments
    (it may ask for other fixtures: `request.getfixturevalue`)."""

    @pytest.fixture(scope="package")
    def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
        kwargs = options(request) if options is not None else {}
        with running_stack(tmp_path_factory.mktemp(name), **kwargs) as running:
            yield running

    return stack
