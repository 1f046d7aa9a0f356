"""Typed dependencies of the routes: the caller, the proxies of the actors a route talks to, preconditions.

Everything comes from the `Resources` the lifespan built and put on `app.state`; nothing here is global.
All are `async def`: FastAPI runs plain `def` dependencies on its thread pool, a thread hop per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from dapr.aio.clients import DaprClient
from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import TokenVerifier
from api.channel.feed import Feed
from api.middleware.idempotency import KEY_PATTERN, IdempotencyStore
from api.middleware.metrics import ApiMetrics
from api.problems import PreconditionFailed, RateLimited
from api.process.settings import Settings
from api.process.shared import Shared
from api.ratelimit import RateLimiter
from todo_actors.client import ActorProxies
from todo_actors.interface import (
    LIST_ACTOR_TYPE,
    OWNER_ACTOR_TYPE,
    OwnerIndexActorInterface,
    TodoListActorInterface,
)
from todo_actors.sidecar_http import SidecarHttp

__all__ = [
    "ID_PATTERN",
    "CurrentUser",
    "IdempotencyKey",
    "IfMatch",
    "ListId",
    "ListProxy",
    "OwnerIndexProxy",
    "Resources",
    "ResourcesDep",
    "SettingsDep",
    "authenticate",
    "resources_of",
    "if_match_version",
]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


@dataclass
class Resources:
    """What the lifespan opens and closes; one per app."""

    settings: Settings
    shared: Shared
    metrics: ApiMetrics
    limiter: RateLimiter
    verifier: TokenVerifier
    proxies: ActorProxies
    dapr: DaprClient
    feed: Feed
    idempotency: IdempotencyStore
    http: SidecarHttp

    def list_actor(self, list_id: str) -> TodoListActorInterface:
        return self.proxies.get(TodoListActorInterface, LIST_ACTOR_TYPE, list_id)

    def owner_index(self, user: str) -> OwnerIndexActorInterface:
        return self.proxies.get(OwnerIndexActorInterface, OWNER_ACTOR_TYPE, user)


def resources_of(request: Request) -> Resources:
    """The app's resources (plain endpoints take them from here; FastAPI routes through `ResourcesDep`)."""
    resources: Resources = request.app.state.resources
    return resources


async def _resources(request: Request) -> Resources:
    return resources_of(request)


ResourcesDep = Annotated[Resources, Depends(_resources)]


async def _settings(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(_settings)]

_bearer = HTTPBearer(auto_error=False, description="A JWT (HS256) whose `sub` is the user")


def authenticate(resources: Resources, authorization: str | None) -> str:
    """The one login step of every route, FastAPI's and the plain endpoints': the user the bearer token
    names, after that user's rate limit."""
    user = resources.verifier.user_of(authorization)
    wait = resources.limiter.take(user)
    if wait:
        raise RateLimited(wait)
    return user


async def _current_user(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    return authenticate(resources, request.headers.get("authorization"))


CurrentUser = Annotated[str, Depends(_current_user)]
"""The authenticated user (`sub`), after the per-user rate limit."""

ListId = Annotated[str, Path(pattern=ID_PATTERN, description="The list's id")]


async def _list_proxy(list_id: ListId, resources: ResourcesDep) -> TodoListActorInterface:
    return resources.list_actor(list_id)


ListProxy = Annotated[TodoListActorInterface, Depends(_list_proxy)]
"""The actor of the list named in the path (ownership is checked by the actor: pass `caller`)."""


async def _owner_proxy(user: CurrentUser, resources: ResourcesDep) -> OwnerIndexActorInterface:
    return resources.owner_index(user)


OwnerIndexProxy = Annotated[OwnerIndexActorInterface, Depends(_owner_proxy)]
"""The caller's index of lists."""

_ETAG = re.compile(r'^\s*"?(\d{1,18})"?\s*$')


IF_MATCH_DESCRIPTION = 'The ETag read earlier (`"3"`); the change fails with 412 if it is stale. `*` = any.'
IF_MATCH_MAX_LENGTH = 100
IF_MATCH_PATTERN = r'^(\*|(W/)?"[1-9][0-9]{0,17}"|[1-9][0-9]{0,17})$'


def if_match_version(if_match: str | None) -> int | None:
    """The version an `If-Match` value names (None when absent or `*`); 412 when it names none."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.fullmatch(if_match)
    if match is None or int(match.group(1)) < 1:
        raise PreconditionFailed(f"If-Match {if_match!r} matches no version of this resource")
    return int(match.group(1))


# The raw header, its syntax checked with the other parameters; handlers read it with `if_match_version`
# once the body is validated too, so a weak tag's 412 (it never matches) cannot pre-empt a 400.
IfMatch = Annotated[str | None, Header(pattern=IF_MATCH_PATTERN, description=IF_MATCH_DESCRIPTION)]
"""`If-Match` as sent (None when absent); a handler parameter with default None."""

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="Retrying a POST with the same key returns the first response and changes nothing twice",
    ),
]
"""Documented here; enforced by `IdempotencyMiddleware` before the route runs."""
