"""Errors the sidecar returns, mapped once to daprd's HTTP status and gRPC code.

Each `DaprError` carries daprd's `errorCode` string; the HTTP layer renders `{"errorCode", "message"}` and the
gRPC layer aborts with the matching status. Whether a caller may retry follows from the status, as in daprd.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

__all__ = ["DaprError", "ERRORS", "error"]


@dataclass(frozen=True)
class ErrorKind:
    code: str
    http_status: int
    grpc_status: grpc.StatusCode


class DaprError(Exception):
    """An API error with daprd's error code; `http_status` and `grpc_status` say how to render it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return self.kind.grpc_status

    def body(self) -> dict[str, str]:
        return {"errorCode": self.kind.code, "message": self.message}


_S = grpc.StatusCode

# daprd's codes (pkg/messages/predefined.go, pkg/api/errors/*.go) with their HTTP and gRPC statuses.
ERRORS: dict[str, ErrorKind] = {
    k.code: k
    for k in [
        ErrorKind("ERR_MALFORMED_REQUEST", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_BAD_REQUEST", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_DIRECT_INVOKE", 500, _S.INTERNAL),
        ErrorKind("ERR_NOT_FOUND", 404, _S.NOT_FOUND),
        ErrorKind("ERR_API_TOKEN", 401, _S.UNAUTHENTICATED),
        ErrorKind("ERR_HEALTH_NOT_READY", 500, _S.INTERNAL),
        ErrorKind("ERR_HEALTH_APPID_NOT_MATCH", 500, _S.INTERNAL),
        ErrorKind("ERR_OUTBOUND_HEALTH_NOT_READY", 500, _S.INTERNAL),
        ErrorKind("ERR_METADATA_GET", 500, _S.INTERNAL),
        # actors
        ErrorKind("ERR_ACTOR_RUNTIME_NOT_FOUND", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_RUNTIME_CLOSED", 503, _S.UNAVAILABLE),
        ErrorKind("ERR_ACTOR_INSTANCE_MISSING", 400, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_INVOKE_METHOD", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_STACK_DEPTH", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_STATE_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_STATE_TRANSACTION_SAVE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_CREATE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_DELETE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_NON_HOSTED", 403, _S.PERMISSION_DENIED),
        ErrorKind("ERR_ACTOR_TIMER_CREATE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_TIMER_DELETE", 500, _S.INTERNAL),
        # state
        ErrorKind("ERR_STATE_STORE_NOT_FOUND", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_STATE_STORE_NOT_CONFIGURED", 500, _S.FAILED_PRECONDITION),
        ErrorKind("ERR_NOT_SUPPORTED_STATE_OPERATION", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_STATE_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_STATE_SAVE", 500, _S.INTERNAL),
        ErrorKind("ERR_STATE_DELETE", 500, _S.INTERNAL),
        ErrorKind("ERR_STATE_BULK_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_STATE_TRANSACTION", 500, _S.INTERNAL),
        ErrorKind("ERR_STATE_STORE_NOT_SUPPORTED", 500, _S.INTERNAL),
        # pub/sub
        ErrorKind("ERR_PUBSUB_NOT_FOUND", 404, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_PUBSUB_EMPTY", 404, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_TOPIC_NAME_EMPTY", 404, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_PUBSUB_NOT_CONFIGURED", 400, _S.FAILED_PRECONDITION),
        ErrorKind("ERR_PUBSUB_FORBIDDEN", 403, _S.PERMISSION_DENIED),
        ErrorKind("ERR_PUBSUB_REQUEST_METADATA", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_PUBSUB_PUBLISH_MESSAGE", 500, _S.INTERNAL),
        ErrorKind("ERR_PUBSUB_EVENTS_SER", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_PUBSUB_CLOUD_EVENTS_SER", 500, _S.INVALID_ARGUMENT),
        # secrets
        ErrorKind("ERR_SECRET_STORES_NOT_CONFIGURED", 500, _S.FAILED_PRECONDITION),
        ErrorKind("ERR_SECRET_STORE_NOT_FOUND", 401, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_SECRET_GET", 500, _S.INTERNAL),
        # bindings
        ErrorKind("ERR_INVOKE_OUTPUT_BINDING", 500, _S.INTERNAL),
    ]
}


def error(code: str, message: str) -> DaprError:
    """Build the `DaprError` for one of daprd's error codes."""
    return DaprError(ERRORS[code], message)
