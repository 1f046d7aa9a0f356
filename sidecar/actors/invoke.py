"""Actor method invocation: the caller's request in, the app's reply mapped back as daprd maps it.

daprd always calls the app with PUT, forwards body, Content-Type, query and headers, passes a 200 reply back
verbatim, and turns anything else into 500 `ERR_ACTOR_INVOKE_METHOD` (unless the app set the .NET
`X-DaprErrorResponseHeader`, in which case its reply goes back untouched).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.actors.runtime import REENTRANCY_HEADER, ActorHost, app_path
from sidecar.errors import error

__all__ = ["MethodReply", "invoke_method"]

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
) -> MethodReply:
    await host.require_hosted(actor_type)
    path = app_path(actor_type, actor_id, f"/method/{method}")
    if query:
        path = f"{path}?{query}"
    reentrancy_id = next((v for k, v in headers.items() if k.lower() == "dapr-reentrancy-id"), None)
    try:
        resp = await host.call_in_turn(actor_type, actor_id, path, body, headers, reentrancy_id=reentrancy_id)
    except (OSError, TimeoutError) as exc:
        raise error(
            "ERR_ACTOR_INVOKE_METHOD",
            f"error invoke actor method: error from actor service: {exc or type(exc).__name__}",
        ) from exc
    reply_headers = {
        k: v
        for k, v in resp.headers.items()
        if k.lower() not in _REPLY_HEADER_DROP and k.lower() != REENTRANCY_HEADER.lower()
    }
    if resp.status == 200 or any(k.lower() == "x-daprerrorresponseheader" for k in resp.headers):
        return MethodReply(resp.status, resp.body, reply_headers)
    text = resp.body.decode("utf-8", "replace")
    raise error(
        "ERR_ACTOR_INVOKE_METHOD",
        f"error invoke actor method: error from actor service: ({resp.status}) {text}",
    )
