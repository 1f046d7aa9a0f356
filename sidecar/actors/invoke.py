"""Actor method invocation: the caller's request in, the app's reply mapped back as daprd maps it.

daprd always calls the app with PUT, forwards body, Content-Type, query and headers, passes a 200 reply back
verbatim, and turns anything else into 500 `ERR_ACTOR_INVOKE_METHOD` (unless the app set the .NET
`X-DaprErrorResponseHeader`, in which case its reply goes back untouched). An actors target's policy
applies as daprd splits it: retries and the breaker in the calling sidecar (`under_policy`), the timeout
around the app call once the turn is taken, in the hosting sidecar.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sidecar.actors.runtime import REENTRANCY_HEADER, ActorHost, app_path
from sidecar.errors import ERRORS, DaprError, error
from sidecar.resiliency import FAILED, CircuitOpen, Permanent, Policy

__all__ = ["FORWARDED_SCOPE", "MethodReply", "error_reply", "invoke_method", "under_policy"]

# ASGI scope key of an actor call another sidecar forwarded here: its caller's sidecar ran the policy.
FORWARDED_SCOPE = "todo_engine.forwarded"
ERROR_HEADER = "x-daprerrorresponseheader"  # the .NET SDK's actor failure signal

T = TypeVar("T")

_REPLY_HEADER_DROP = frozenset(
    {"content-length", "transfer-encoding", "connection", "date", "server", "keep-alive"}
)


@dataclass(frozen=True)
class MethodReply:
    status: int
    body: bytes
    headers: dict[str, str]


async def invoke_method(
    host: ActorHost,
    actor_type: str,
    actor_id: str,
    method: str,
    body: bytes,
    headers: Mapping[str, str],
    query: str = "",
    timeout: float | None = None,
) -> MethodReply:
    """Call the actor method in the actor's turn; `timeout` bounds the app call (daprd's post-lock policy)."""
    await host.require_hosted(actor_type)
    path = app_path(actor_type, actor_id, f"/method/{method}")
    if query:
        path = f"{path}?{query}"
    reentrancy_id = next((v for k, v in headers.items() if k.lower() == "dapr-reentrancy-id"), None)
    try:
        resp = await host.call_in_turn(
            actor_type, actor_id, path, body, headers, reentrancy_id=reentrancy_id, timeout=timeout
        )
    except TimeoutError as exc:
        if timeout is not None:  # the policy's timeout, as daprd reports its context's deadline
            message = "error invoke actor method: context deadline exceeded"
            raise error("ERR_ACTOR_INVOKE_METHOD", message) from None
        raise error(
            "ERR_ACTOR_INVOKE_METHOD",
            f"error invoke actor method: error from actor service: {exc or type(exc).__name__}",
        ) from exc
    except OSError as exc:
        raise error(
            "ERR_ACTOR_INVOKE_METHOD",
            f"error invoke actor method: error from actor service: {exc or type(exc).__name__}",
        ) from exc
    reply_headers = {
        k: v
        for k, v in resp.headers.items()
        if k.lower() not in _REPLY_HEADER_DROP and k.lower() != REENTRANCY_HEADER.lower()
    }
    if resp.status == 200 or error_reply(resp.headers):
        return MethodReply(resp.status, resp.body, reply_headers)
    if resp.status == 404:  # daprd's HTTP transport: never retried
        raise MethodNotFound(
            ERRORS["ERR_ACTOR_INVOKE_METHOD"], f"error invoke actor method: actor method not found: {method}"
        )
    text = resp.body.decode("utf-8", "replace")
    raise error(
        "ERR_ACTOR_INVOKE_METHOD",
        f"error invoke actor method: error from actor service: ({resp.status}) {text}",
    )


class MethodNotFound(DaprError):
    """The app has no such actor method (it answered 404): permanent, as daprd marks it."""


def error_reply(headers: Mapping[str, str]) -> bool:
    """Whether an actor's reply is the .NET SDK's failure (`X-DaprErrorResponseHeader`)."""
    return any(k.lower() == ERROR_HEADER for k in headers)


async def under_policy(
    policy: Policy | None, attempt: Callable[[], Awaitable[T]], failed: Callable[[T], bool]
) -> T:
    """daprd's actor pre-lock policy (`ActorPreLockPolicy`: retries, breaker) around one actor call in the
    calling sidecar; `failed(reply)` says whether a reply counts as an actor error. An open breaker is
    daprd's `ERR_ACTOR_INVOKE_METHOD`."""
    if policy is None:
        return await attempt()

    async def once() -> T:
        try:
            return await attempt()
        except MethodNotFound as exc:
            raise Permanent(exc) from None

    try:
        return await policy.run(once, lambda reply: FAILED if failed(reply) else None)
    except CircuitOpen as exc:
        raise error("ERR_ACTOR_INVOKE_METHOD", f"error invoke actor method: {exc}") from None
