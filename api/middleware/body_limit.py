"""Refuse request bodies over the configured size with 413 problem+json.

A declared `Content-Length` over the limit is refused at once; a chunked body is read as it streams and
refused as soon as it passes the limit, so no more than the limit is ever held in memory.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PayloadTooLarge, problem_response

__all__ = ["BodyLimitMiddleware", "BodyTooLarge", "read_body", "replay"]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        framed = False  # the request says it has a body (Content-Length or Transfer-Encoding)
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"content-length":
                declared, framed = value, True
            elif name == b"transfer-encoding":
                framed = True
        if not framed:  # HTTP/1.1: no body at all (a GET, a DELETE): nothing to bound or read ahead
            await self.app(scope, receive, send)
            return
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False  # uvicorn rejects a malformed Content-Length before we see it
            if too_big:
                await self._refuse(scope, receive, send)
                return
        # Read the body here (at most max_bytes are ever held): an error raised from inside the app's
        # own body read would be turned into a 400 by FastAPI.
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)
            return
        except ClientDisconnect:
            return  # nobody is left to answer
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay([whole], receive), send)

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            PayloadTooLarge.kind,
            413,
            PayloadTooLarge.title,
            self._detail(),
            instance=scope["path"],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    """The request body passed the limit `read_body` was given."""


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes:
    """The whole request body (the app's one reader of ASGI body messages); raises `BodyTooLarge` as soon
    as it passes `max_bytes`, and Starlette's `ClientDisconnect` if the client goes away first."""
    parts: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        received += len(chunk)
        if max_bytes is not None and received > max_bytes:
            raise BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`messages` first, then the real `receive` (for the disconnect a streaming response waits on)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
