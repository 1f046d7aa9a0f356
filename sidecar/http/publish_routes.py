"""daprd's HTTP publish API (`/v1.0/publish/...` and bulk) over `PubSubEngine`: metadata from
`?metadata.<key>=v`, content type from the header, bulk events converted as `ConvertEventToBytes`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sidecar import gojson
from sidecar.errors import error
from sidecar.pubsub import BulkEntry, PubSubEngine
from sidecar.pubsub.cloudevents import (
    is_binary_content_type,
    is_cloudevent_content_type,
    is_json_content_type,
    is_string_content_type,
)

__all__ = ["routes"]

_METADATA_PREFIX = "metadata."


def _metadata(request: Request) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith(_METADATA_PREFIX):
            metadata.setdefault(key[len(_METADATA_PREFIX) :], value)
    return metadata


def _target(request: Request) -> tuple[str, str]:
    """`{pubsubname}/*` of daprd's route: the first segment may be empty, the topic may hold `/`."""
    pubsub, sep, topic = request.path_params["rest"].partition("/")
    if not sep:
        raise HTTPException(404)
    return pubsub, topic


def _event_bytes(event: Any, content_type: str) -> bytes:
    """daprd `ConvertEventToBytes`; ValueError carries its message."""
    mismatch = "error: mismatch between contentType and event"
    if is_binary_content_type(content_type):
        if not isinstance(event, str):
            raise ValueError(mismatch)
        try:
            return base64.b64decode(event, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"error: unable to decode base64 application/octect-stream data: {exc}") from exc
    if is_string_content_type(content_type):
        if not isinstance(event, str):
            raise ValueError(mismatch)
        return event.encode("utf-8")
    if is_json_content_type(content_type) or is_cloudevent_content_type(content_type):
        return gojson.dumps(event)
    raise ValueError(mismatch)


def _entries(body: bytes, pubsub: str, topic: str) -> list[BulkEntry]:
    def unmarshal_error(reason: str) -> Exception:
        return error(
            "ERR_PUBSUB_EVENTS_SER",
            f"error when unmarshaling the request for topic {topic} pubsub {pubsub}: {reason}",
        )

    try:
        raw = gojson.decode_first(body, precise=False)
    except ValueError as exc:
        raise unmarshal_error(str(exc)) from exc
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(isinstance(e, dict) or e is None for e in raw):
        raise unmarshal_error("the body must be a JSON array of entry objects")
    entries: list[BulkEntry] = []
    seen: set[str] = set()
    for item in raw:
        entry = item or {}
        entry_id, content_type, metadata = (
            entry.get("entryId"),
            entry.get("contentType"),
            entry.get("metadata"),
        )
        if not isinstance(entry_id, str | None) or not isinstance(content_type, str | None):
            raise unmarshal_error("entryId and contentType must be strings")
        if metadata is not None and not (
            isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
        ):
            raise unmarshal_error("metadata must be an object of strings")
        try:
            data = _event_bytes(entry.get("event"), content_type or "")
        except ValueError as exc:
            raise error(
                "ERR_PUBSUB_EVENTS_SER",
                f"error when marshalling cloud event envelope for topic {topic} pubsub {pubsub}: {exc}",
            ) from exc
        if not entry_id or entry_id in seen:
            raise error(
                "ERR_PUBSUB_EVENTS_SER",
                f"error marshaling events to bytes for topic {topic} pubsub {pubsub}. "
                "error: entryId is duplicated or not present for entry",
            )
        seen.add(entry_id)
        entries.append(BulkEntry(entry_id, data, content_type or "", metadata))
    return entries


def routes(engine: PubSubEngine) -> list[BaseRoute]:
    async def publish(request: Request) -> Response:
        pubsub, topic = _target(request)
        metadata = _metadata(request)
        engine.validate(pubsub, topic, metadata)
        await engine.publish(
            pubsub,
            topic,
            await request.body(),
            request.headers.get("content-type", ""),
            metadata,
            traceparent=request.headers.get("traceparent", ""),
            tracestate=request.headers.get("tracestate", ""),
        )
        return Response(status_code=204)

    async def bulk_publish(request: Request) -> Response:
        pubsub, topic = _target(request)
        metadata = _metadata(request)
        engine.validate(pubsub, topic, metadata)
        failed = await engine.bulk_publish(
            pubsub,
            topic,
            _entries(await request.body(), pubsub, topic),
            metadata,
            traceparent=request.headers.get("traceparent", ""),
            tracestate=request.headers.get("tracestate", ""),
        )
        if not failed:
            return Response(status_code=204)
        body = {
            "failedEntries": [{"entryId": i, "error": e} for i, e in failed],
            "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
        }
        return Response(gojson.dumps(body), status_code=500, media_type="application/json")

    methods = ["POST", "PUT"]
    return [
        Route("/v1.0-alpha1/publish/bulk/{rest:path}", bulk_publish, methods=methods),
        Route("/v1.0/publish/bulk/{rest:path}", bulk_publish, methods=methods),
        Route("/v1.0/publish/{rest:path}", publish, methods=methods),
    ]
