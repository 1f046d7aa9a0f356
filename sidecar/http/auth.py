"""`DAPR_API_TOKEN` enforcement for the HTTP API, as daprd's middleware: 401 `invalid api token` in plain
text on every route but the two healthz routes."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TokenMiddleware"]

_EXEMPT = ("/v1.0/healthz", "/v1.0/healthz/outbound")


class TokenMiddleware:
    """Pure ASGI middleware (no per-request Request object: it sits on every call's hot path)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"dapr-api-token"), b"")
        if hmac.compare_digest(given, self.token):
            await self.app(scope, receive, send)
            return
        body = b"invalid api token"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"17")],
            }
        )
        await send({"type": "http.response.body", "body": body})
