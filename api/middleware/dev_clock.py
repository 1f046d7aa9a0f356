"""With the dev clock, the app's clock follows the offset the sidecar sends with each call into the app."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from api.offset_clock import OffsetClock

__all__ = ["DevClockMiddleware"]

log = logging.getLogger("api.channel")


class DevClockMiddleware:
    """With the dev clock: adopt the offset the sidecar sends with each call (`x-dev-clock-offset`).

    The sidecar steps its clock through due instants; a reminder's handler must see the instant that
    fired it, not the offset of the last advance request.
    """

    def __init__(self, app: ASGIApp, clock: OffsetClock) -> None:
        self.app = app
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-dev-clock-offset":
                    try:
                        self._clock.follow(float(value))
                    except ValueError:
                        log.warning("ignoring a malformed x-dev-clock-offset header: %r", value[:40])
                    break
        await self.app(scope, receive, send)
