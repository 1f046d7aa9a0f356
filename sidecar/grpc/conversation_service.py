"""The Dapr gRPC conversation methods (`ConverseAlpha1`, `ConverseAlpha2`), mixed into `dapr_service`:
the wire only, the API itself is `sidecar.conversation`'s, shared with the HTTP routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from sidecar.errors import DaprError
from sidecar.jobs.errors import abort

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["ConversationMixin"]


class ConversationMixin:
    sidecar: Sidecar

    async def ConverseAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return self.sidecar.conversation.alpha1(request)
        except DaprError as exc:
            await abort(context, exc)

    async def ConverseAlpha2(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return self.sidecar.conversation.alpha2(request)
        except DaprError as exc:
            await abort(context, exc)
