"""Service invocation into an app on the gRPC app channel (`--app-protocol grpc`): daprd's gRPC channel
`invokeMethodV1` sends `AppCallback/OnInvoke`, and the app's gRPC status comes back as the reply's status,
not as an HTTP status (callers over HTTP get it mapped as daprd's `HTTPStatusFromCode`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

import grpc
from dapr.proto.common.v1 import common_pb2
from google.protobuf import any_pb2

from sidecar.appchannel_grpc import AppCallError, GrpcAppChannel
from sidecar.invoke.headers import grpc_metadata_from_http, joined_headers

__all__ = ["GrpcAnswer", "GrpcStatus", "call_grpc_app", "http_status_from_code", "status_json"]

# daprd's invokev1.HTTPStatusFromCode (pkg/messaging/v1/util.go)
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 408,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_VERBS = dict(common_pb2.HTTPExtension.Verb.items())
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class GrpcStatus:
    """The gRPC status of a gRPC app's answer (`code` as its number) and its trailing metadata."""

    __slots__ = ("code", "message", "trailers")

    def __init__(self, code: int, message: str = "", trailers: Mapping[str, str] | None = None) -> None:
        self.code = code
        self.message = message
        self.trailers: Mapping[str, str] = trailers or {}

    @property
    def status_code(self) -> grpc.StatusCode:
        return _BY_NUMBER.get(self.code, grpc.StatusCode.UNKNOWN)


def http_status_from_code(code: int) -> int:
    return _HTTP_STATUS.get(_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN), 500)


def status_json(status: GrpcStatus) -> bytes:
    """The body daprd gives an HTTP caller for a failed gRPC answer: the `google.rpc.Status` as protojson
    (unpopulated fields left out)."""
    out: dict[str, object] = {}
    if status.code:
        out["code"] = status.code
    if status.message:
        out["message"] = status.message
    return json.dumps(out, separators=(",", ":")).encode()


class GrpcAnswer(NamedTuple):
    """A gRPC app's answer to `OnInvoke`: its status, data, headers, content type and data type URL."""

    status: GrpcStatus
    body: bytes
    headers: dict[str, str]
    content_type: str
    type_url: str


async def call_grpc_app(
    channel: GrpcAppChannel,
    method: str,
    verb: str,
    query: str,
    headers: list[tuple[str, str]],
    data: tuple[bytes, str, str],
) -> GrpcAnswer:
    """`OnInvoke` with the request's headers as gRPC metadata; `data` is the body, its content type and
    its type URL. A gRPC error status of the app is an answer; raises the channel's errors when the app
    gave none (`AppUnhealthy`, `AppUnreachable`, TimeoutError)."""
    body, content_type, type_url = data
    # daprd's WithHTTPExtension: a verb the enum does not name is NONE
    extension = common_pb2.HTTPExtension(verb=_VERBS.get(verb.upper(), 0), querystring=query)
    metadata = joined_headers(grpc_metadata_from_http(headers))
    try:
        reply = await channel.invoke(
            method, any_pb2.Any(type_url=type_url, value=body), content_type, extension, metadata
        )
    except AppCallError as exc:
        return GrpcAnswer(GrpcStatus(exc.code.value[0], exc.details), b"", {}, "", "")
    response = reply.response
    return GrpcAnswer(
        GrpcStatus(0, "", dict(reply.trailers)),
        bytes(response.data.value),
        dict(reply.headers),
        response.content_type,
        response.data.type_url,
    )
