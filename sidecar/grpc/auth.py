"""`dapr-api-token` check for every gRPC call (UNAUTHENTICATED on a wrong or missing token); a peer sidecar's
proxied call (not a Dapr API) is let through on the host secret instead (sidecar/invoke/grpc_proxy.py)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

__all__ = ["TokenInterceptor"]

# The sidecar's own services: the host secret never stands in for the API token on them.
_SERVED = ("/dapr.proto.", "/TaskHubSidecarService/")


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, token: str | None, peer: Callable[[object], bool] | None = None) -> None:
        """`peer`: whether a call's `dapr-internal-host-secret` proves a sidecar of this host."""
        self._token = token.encode() if token else None
        self._peer = peer

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authentication error: invalid token")

        self._deny_unary = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if self._token is None:
            return await continuation(handler_call_details)
        given = b""
        secret: object = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "dapr-api-token":
                given = value.encode() if isinstance(value, str) else value
            elif key == "dapr-internal-host-secret":
                secret = value
        if hmac.compare_digest(given, self._token):
            return await continuation(handler_call_details)
        method = str(handler_call_details.method or "")
        if self._peer is not None and not method.startswith(_SERVED) and self._peer(secret):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is not None and handler.response_streaming:
            return self._deny_stream
        return self._deny_unary
