"""The app channel's guard: daprd sends `dapr-api-token: APP_API_TOKEN` on every call into the app, so any
request without it is refused with 401 before it reaches a route."""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AppTokenMiddleware"]


class AppTokenMiddleware:
    """401 for any request without the right `dapr-api-token` header (constant-time comparison)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            sent = next((v for k, v in scope["headers"] if k == b"dapr-api-token"), b"")
            if not hmac.compare_digest(sent, self._token):
                response = JSONResponse(
                    {"errorCode": "ERR_UNAUTHORIZED", "message": "missing or invalid dapr-api-token"},
                    status_code=401,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
