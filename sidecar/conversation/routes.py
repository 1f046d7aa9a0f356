"""daprd's conversation routes (`POST /v1.0-alpha1/conversation/{name}/converse` and `/v1.0-alpha2/...`):
the body read as protojson into the gRPC request (unknown fields ignored), the answer written as protojson,
as daprd's universal HTTP handler does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dapr.proto.runtime.v1 import ai_pb2
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sidecar.conversation.service import ConversationAPI
from sidecar.errors import error

__all__ = ["routes"]


def _endpoint(message_type: Any, converse: Callable[[Any], Any]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        body = await request.body()
        message = message_type()
        if body:
            try:
                json_format.Parse(body, message, ignore_unknown_fields=True)
            except (json_format.ParseError, UnicodeDecodeError) as exc:
                raise error("ERR_MALFORMED_REQUEST", f"failed deserializing HTTP body: {exc}") from None
        message.name = str(request.path_params["name"])
        return JSONResponse(json_format.MessageToDict(converse(message)))

    return endpoint


def routes(api: ConversationAPI) -> list[BaseRoute]:
    return [
        Route(
            "/v1.0-alpha1/conversation/{name}/converse",
            _endpoint(ai_pb2.ConversationRequest, api.alpha1),
            methods=["POST"],
        ),
        Route(
            "/v1.0-alpha2/conversation/{name}/converse",
            _endpoint(ai_pb2.ConversationRequestAlpha2, api.alpha2),
            methods=["POST"],
        ),
    ]
