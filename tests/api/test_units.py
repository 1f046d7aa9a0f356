"""The facade's pure parts: settings fail fast, the rate limiter's arithmetic, error mapping, exports."""

from __future__ import annotations

import datetime as dt
import importlib
import time

import httpx
import jwt
import pytest
from fastapi import FastAPI

from api.auth import LEEWAY_SECONDS, TokenVerifier, mint_token
from api.page_relay import split_page_reply
from api.problems import Unauthorized, install_problem_handlers
from api.process.settings import SettingsError, load_settings
from api.ratelimit import RateLimiter
from api.schemas import ItemPage
from todo_actors.errors import InvalidInput, LimitExceeded, NotFound, TodoError, VersionConflict
from todo_actors.interface import TodoPage, TodoPageReply
from todo_actors.model import TodoItem
from todo_actors.serializer import PydanticSerializer

GOOD = {"APP_API_TOKEN": "t" * 20, "TODO_JWT_SECRET": "s" * 40}


def test_settings_from_environment() -> None:
    s = load_settings({**GOOD, "DAPR_HTTP_PORT": "3600", "TODO_DEV_CLOCK": "true", "APP_PORT": "9001"})
    assert s.dapr_http_port == 3600 and s.dev_clock and s.channel_port == 9001
    assert s.dapr_http_endpoint == "http://127.0.0.1:3600"
    assert load_settings({**GOOD, "DAPR_API_TOKEN": ""}).dapr_api_token is None  # empty = unset


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TODO_JWT_SECRET": "s" * 40}, "APP_API_TOKEN"),
        ({**GOOD, "APP_API_TOKEN": "short"}, "APP_API_TOKEN"),
        ({"APP_API_TOKEN": "t" * 20}, "no JWT secret"),
        ({**GOOD, "TODO_JWT_SECRET": "too short"}, "TODO_JWT_SECRET"),
        ({**GOOD, "TODO_CHANNEL_HOST": "0.0.0.0"}, "loopback"),
        ({**GOOD, "DAPR_HTTP_PORT": "http"}, "DAPR_HTTP_PORT"),
        ({**GOOD, "TODO_DEV_CLOCK": "maybe"}, "TODO_DEV_CLOCK"),
        ({**GOOD, "TODO_PORT": "8001", "APP_PORT": "8001"}, "different ports"),
    ],
)
def test_unsafe_settings_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_jwt_secret_may_come_from_a_secret_store() -> None:
    s = load_settings(
        {"APP_API_TOKEN": "t" * 20, "TODO_JWT_SECRET_STORE": "local", "TODO_JWT_SECRET_KEY": "jwt"}
    )
    assert s.jwt_secret is None and s.jwt_secret_store == "local"


def test_rate_limiter_refills_and_says_how_long_to_wait() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, monotonic=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1  # needs 0.5 s: rounded up to a whole second
    assert limiter.take("b") == 0  # per user
    now[0] += 0.5
    assert limiter.take("a") == 0
    assert limiter.take("a") == 1
    now[0] += 100
    assert [limiter.take("a") for _ in range(4)] == [0, 0, 0, 1]  # never more than the burst
    slow = RateLimiter(rate=0.1, burst=1, monotonic=lambda: now[0])
    assert slow.take("c") == 0 and slow.take("c") == 10


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(rate=1, burst=1, monotonic=lambda: 0.0, max_users=10)
    for n in range(100):
        limiter.take(f"user{n}")
    assert len(limiter._buckets) == 10


@pytest.mark.parametrize(
    ("error", "if_match", "status", "kind"),
    [
        (NotFound("no such list"), None, 404, "not-found"),
        (InvalidInput.at("parent_id", "no such item"), None, 409, "invalid-input"),
        (InvalidInput.at("user", "is already a member (viewer)"), None, 409, "invalid-input"),
        (InvalidInput.at("title", "no such item"), None, 422, "invalid-input"),
        (LimitExceeded("too many", limit_name="reminders_per_item", limit=10), None, 422, "limit-exceeded"),
        (LimitExceeded("too many", limit_name="items_per_list", limit=5000), None, 409, "limit-exceeded"),
        (LimitExceeded("too many", limit_name="lists_per_owner", limit=1000), None, 409, "limit-exceeded"),
        (VersionConflict("stale", expected=1, actual=2), '"1"', 412, "precondition-failed"),
        (VersionConflict("the list already exists", expected=0, actual=1), None, 409, "conflict"),
    ],
)
async def test_domain_errors_map_to_problems(
    error: TodoError, if_match: str | None, status: int, kind: str
) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/x")
    async def fail() -> None:
        raise TodoError.from_info(error.info())

    headers = {"If-Match": if_match} if if_match else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/x", headers=headers)
    assert r.status_code == status and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (
        body["type"] == f"/problems/{kind}" and body["detail"] == error.message and body["instance"] == "/x"
    )
    if isinstance(error, InvalidInput):
        (field,) = error.details["errors"]
        assert isinstance(field, dict)
        assert body["errors"] == [{"loc": field["loc"], "msg": field["msg"], "type": None}]


@pytest.mark.parametrize(
    "module",
    [
        "api.app",
        "api.auth",
        "api.middleware.body_limit",
        "api.channel.app",
        "api.process.cli",
        "api.deps",
        "api.channel.feed",
        "api.middleware.idempotency",
        "api.process.local_secrets",
        "api.process.logs",
        "api.middleware.metrics",
        "api.openapi",
        "api.page_relay",
        "api.problems",
        "api.ratelimit",
        "api.responses",
        "api.schemas",
        "api.process.serve",
        "api.process.settings",
        "api.process.shared",
        "api.process.sidecar_link",
        "api.middleware.span_export",
        "api.middleware.tracing",
        "api.process.up",
        "api.web",
        "api.web.site",
        "api.channel.workflow_outcomes",
    ],
)
def test_exports_exist_and_modules_say_why(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__doc__ and mod.__doc__.strip()
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names missing {name!r}"


async def test_the_public_app_never_routes_the_app_channel() -> None:
    from api.app import create_app

    app = create_app(load_settings(GOOD))  # lifespan not run: routing alone answers
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for method, path in [
            ("GET", "/dapr/config"),
            ("GET", "/dapr/subscribe"),
            ("GET", "/healthz"),
            ("PUT", "/actors/TodoListActor/x/method/GetList"),
            ("DELETE", "/actors/TodoListActor/x"),
            ("POST", "/events/pubsub/task-events"),
        ]:
            assert (await client.request(method, path)).status_code == 404, path
    assert not [
        p for p in app.openapi()["paths"] if p.startswith(("/actors", "/dapr", "/events", "/healthz"))
    ]


def test_a_remembered_token_still_expires_and_a_forged_one_is_never_remembered() -> None:
    secret, now = "k" * 40, [float(int(time.time()))]
    verifier = TokenVerifier(secret, max_ttl_seconds=3600, wall=lambda: now[0])
    token = mint_token(secret, "alice", now=int(now[0]), ttl_seconds=60)
    assert verifier.verify(token) == "alice"
    now[0] += 60 + LEEWAY_SECONDS - 1
    assert verifier.verify(token) == "alice"  # remembered, still inside exp + leeway
    now[0] += 1
    with pytest.raises(Unauthorized):
        verifier.verify(token)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            TokenVerifier(secret, max_ttl_seconds=3600).verify(forged)
    early = mint_token(secret, "bob", now=int(now[0]) + 3600, ttl_seconds=60)
    with pytest.raises(Unauthorized):  # PyJWT checks `iat` in the future; never remembered as valid
        TokenVerifier(secret, max_ttl_seconds=3600, wall=lambda: now[0]).verify(early)


def test_a_token_must_expire_within_the_maximum_lifetime() -> None:
    secret, now = "k" * 40, float(int(time.time()))
    verifier = TokenVerifier(secret, max_ttl_seconds=3600, wall=lambda: now)
    assert verifier.verify(mint_token(secret, "alice", now=int(now), ttl_seconds=3600)) == "alice"
    too_long = mint_token(secret, "alice", now=int(now), ttl_seconds=3600 + LEEWAY_SECONDS + 1)
    never = jwt.encode({"sub": "alice", "iat": int(now)}, secret, algorithm="HS256")
    # without `iat`, the lifetime counts from now
    far = jwt.encode({"sub": "alice", "exp": int(now) + 7200}, secret, algorithm="HS256")
    near = jwt.encode({"sub": "alice", "exp": int(now) + 600}, secret, algorithm="HS256")
    assert verifier.verify(near) == "alice"
    for token, reason in ((too_long, "longer than the 3600 s"), (never, "no 'exp'"), (far, "longer")):
        with pytest.raises(Unauthorized, match=reason):
            verifier.verify(token)


@pytest.mark.parametrize("cursor", [None, 'c,"list_version":9}'])
def test_a_page_reply_is_relayed_byte_for_byte_as_the_public_page(cursor: str | None) -> None:
    now = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    titles = ['ends like a page ,"list_version":5}', '日本語 \u2028 "quoted"', "2025-01-01 file taxes"]
    items = [
        TodoItem(id=f"i{n}", title=t, position=1024 * (n + 1), created_at=now, updated_at=now)
        for n, t in enumerate(titles)
    ]
    page = TodoPage(items=items, next_cursor=cursor, list_version=42)
    raw = PydanticSerializer().serialize(TodoPageReply(value=page))
    split = split_page_reply(raw)
    assert split is not None
    body, version = split
    assert version == 42
    assert body == ItemPage(items=items, next_cursor=cursor, list_version=42).model_dump_json().encode()
    assert ItemPage.model_validate_json(body).items[0].title == titles[0]


def test_a_domain_error_reply_is_not_relayed() -> None:
    raw = PydanticSerializer().serialize(TodoPageReply(error=NotFound("no such list").info()))
    assert split_page_reply(raw) is None
