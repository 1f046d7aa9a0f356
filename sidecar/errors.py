"""Errors the sidecar returns, mapped once to daprd's HTTP status, gRPC code and rich error details.

Each `DaprError` carries daprd's `errorCode` string; the HTTP layer renders `{"errorCode", "message"}` and the
gRPC layer aborts with the matching status. Where daprd builds an error with dapr/kit's errors package,
the error also carries `google.rpc` details (`ErrorInfo` with daprd's reason, `ResourceInfo`, `BadRequest`):
in the `grpc-status-details-bin` trailer on gRPC and as `details` in the HTTP body, as daprd renders them.
Whether a caller may retry follows from the status, as in daprd.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

__all__ = ["DOMAIN", "DaprError", "ERRORS", "ErrorKind", "error", "http_reply_error"]

# dapr/kit errors.Domain: the ErrorInfo domain of every daprd error.
DOMAIN = "dapr.io"
_TYPE_PREFIX = "type.googleapis.com/"
DETAILS_TRAILER = "grpc-status-details-bin"


@dataclass(frozen=True)
class ErrorKind:
    """One of daprd's error codes. `reason` (with `resource_type`) is set where daprd builds the error with
    kit/errors on both wires; `grpc_basic` where only its gRPC API does (`apierrors.Basic`: ErrorInfo whose
    reason is the code, no metadata)."""

    code: str
    http_status: int
    grpc_status: grpc.StatusCode
    reason: str = ""
    resource_type: str = ""
    grpc_basic: bool = False


class DaprError(Exception):
    """An API error with daprd's error code; `http_status` and `grpc_status` say how to render it.

    `reason`, `metadata`, `resource` (ResourceInfo name; `resource_type` overrides the kind's),
    `resource_description` and `field` (a BadRequest field violation, described by the message) fill the
    kit/errors details; `extra` adds ready-made ones."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        resource: str = "",
        resource_type: str | None = None,
        resource_description: str = "",
        field: str | None = None,
        extra: Sequence[Message] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.reason = kind.reason if reason is None else reason
        self.metadata = dict(metadata) if metadata is not None else None
        self.resource = resource
        self.resource_type = kind.resource_type if resource_type is None else resource_type
        self.resource_description = resource_description
        self.field = field
        self.extra = tuple(extra)

    @property
    def code(self) -> str:
        return self.kind.code

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return self.kind.grpc_status

    def _kit_details(self) -> list[Message]:
        """kit/errors' details in its builder's order: BadRequest, ResourceInfo, then ErrorInfo."""
        if not self.reason:
            return []
        details: list[Message] = []
        if self.field is not None:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=self.field, description=self.message
                        )
                    ]
                )
            )
        if self.resource and self.resource_type:
            details.append(
                error_details_pb2.ResourceInfo(
                    resource_type=self.resource_type,
                    resource_name=self.resource,
                    description=self.resource_description,
                )
            )
        details.append(error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata))
        return details

    def grpc_details(self) -> list[Message]:
        details = self._kit_details()
        if not details and self.kind.grpc_basic:
            details = [error_details_pb2.ErrorInfo(reason=self.kind.code, domain=DOMAIN)]
        return [*details, *self.extra]

    def grpc_trailer(self) -> tuple[tuple[str, bytes], ...]:
        """The `grpc-status-details-bin` trailer (a `google.rpc.Status`), empty where daprd sends none."""
        details = self.grpc_details()
        if not details:
            return ()
        packed = []
        for detail in details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        status = status_pb2.Status(code=self.grpc_status.value[0], message=self.message, details=packed)
        return ((DETAILS_TRAILER, status.SerializeToString()),)

    def body(self) -> dict[str, Any]:
        """daprd's HTTP error body; kit/errors' errors add `details` rendered as its JSON does."""
        out: dict[str, Any] = {"errorCode": self.kind.code, "message": self.message}
        details = [*self._kit_details(), *self.extra]
        if details:
            out["details"] = [_detail_json(d) for d in details]
        return out


def _detail_json(detail: Message) -> dict[str, Any]:
    """kit/errors' `convertErrorDetails`: the proto's fields by their Go JSON names, nil maps as null."""
    kind = _TYPE_PREFIX + detail.DESCRIPTOR.full_name
    if isinstance(detail, error_details_pb2.ErrorInfo):
        return {
            "@type": kind,
            "reason": detail.reason,
            "domain": detail.domain,
            "metadata": dict(detail.metadata) or None,
        }
    if isinstance(detail, error_details_pb2.ResourceInfo):
        return {
            "@type": kind,
            "resource_type": detail.resource_type,
            "resource_name": detail.resource_name,
            "owner": detail.owner,
            "description": detail.description,
        }
    if isinstance(detail, error_details_pb2.BadRequest):
        return {
            "@type": kind,
            "field_violations": [
                {k: v for k, v in (("field", f.field), ("description", f.description)) if v}
                for f in detail.field_violations
            ],
        }
    raise TypeError(f"no JSON rendering for error detail {detail.DESCRIPTOR.full_name}")


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
        ErrorKind("ERR_ACTOR_STACK_DEPTH", 500, _S.RESOURCE_EXHAUSTED),
        ErrorKind("ERR_ACTOR_STATE_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_STATE_TRANSACTION_SAVE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_CREATE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_DELETE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_REMINDER_NON_HOSTED", 403, _S.PERMISSION_DENIED),
        ErrorKind("ERR_ACTOR_REMINDER_NOT_FOUND", 404, _S.NOT_FOUND),
        ErrorKind("ERR_ACTOR_REMINDER_ALREADY_EXISTS", 409, _S.ALREADY_EXISTS),
        ErrorKind("ERR_ACTOR_TIMER_CREATE", 500, _S.INTERNAL),
        ErrorKind("ERR_ACTOR_TIMER_DELETE", 500, _S.INTERNAL),
        # state
        ErrorKind("ERR_STATE_STORE_NOT_FOUND", 400, _S.INVALID_ARGUMENT, reason="DAPR_STATE_NOT_FOUND"),
        ErrorKind(
            "ERR_STATE_STORE_NOT_CONFIGURED", 500, _S.FAILED_PRECONDITION, reason="DAPR_STATE_NOT_CONFIGURED"
        ),
        ErrorKind("ERR_NOT_SUPPORTED_STATE_OPERATION", 400, _S.INVALID_ARGUMENT, grpc_basic=True),
        ErrorKind("ERR_STATE_GET", 500, _S.INTERNAL, grpc_basic=True),
        ErrorKind("ERR_STATE_SAVE", 500, _S.INTERNAL, grpc_basic=True),
        ErrorKind("ERR_STATE_DELETE", 500, _S.INTERNAL, grpc_basic=True),
        ErrorKind("ERR_STATE_BULK_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_STATE_BULK_DELETE", 500, _S.INTERNAL, grpc_basic=True),
        ErrorKind("ERR_STATE_TRANSACTION", 500, _S.INTERNAL, grpc_basic=True),
        ErrorKind(
            "ERR_STATE_STORE_NOT_SUPPORTED",
            500,
            _S.INTERNAL,
            reason="DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED",
            resource_type="state",
        ),
        # pub/sub
        ErrorKind("ERR_PUBSUB_NOT_FOUND", 404, _S.INVALID_ARGUMENT, reason="DAPR_PUBSUB_NOT_FOUND"),
        ErrorKind(
            "ERR_PUBSUB_EMPTY",
            404,
            _S.INVALID_ARGUMENT,
            reason="DAPR_PUBSUB_NAME_EMPTY",
            resource_type="pubsub",
        ),
        ErrorKind(
            "ERR_TOPIC_NAME_EMPTY",
            404,
            _S.INVALID_ARGUMENT,
            reason="DAPR_PUBSUB_TOPIC_NAME_EMPTY",
            resource_type="pubsub",
        ),
        ErrorKind(
            "ERR_PUBSUB_NOT_CONFIGURED", 400, _S.FAILED_PRECONDITION, reason="DAPR_PUBSUB_NOT_CONFIGURED"
        ),
        ErrorKind(
            "ERR_PUBSUB_FORBIDDEN",
            403,
            _S.PERMISSION_DENIED,
            reason="DAPR_PUBSUB_FORBIDDEN",
            resource_type="pubsub",
        ),
        ErrorKind(
            "ERR_PUBSUB_REQUEST_METADATA",
            400,
            _S.INVALID_ARGUMENT,
            reason="DAPR_PUBSUB_METADATA_DESERIALIZATION",
            resource_type="pubsub",
        ),
        ErrorKind(
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            500,
            _S.INTERNAL,
            reason="DAPR_PUBSUB_PUBLISH_MESSAGE",
            resource_type="pubsub",
        ),
        ErrorKind(
            "ERR_PUBSUB_EVENTS_SER",
            400,
            _S.INVALID_ARGUMENT,
            reason="DAPR_PUBSUB_MARSHAL_EVENTS",
            resource_type="pubsub",
        ),
        ErrorKind(
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
            500,
            _S.INVALID_ARGUMENT,
            reason="DAPR_PUBSUB_CLOUD_EVENT_CREATION",
            resource_type="pubsub",
        ),
        # secrets
        ErrorKind("ERR_SECRET_STORES_NOT_CONFIGURED", 500, _S.FAILED_PRECONDITION),
        ErrorKind("ERR_SECRET_STORE_NOT_FOUND", 401, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_SECRET_GET", 500, _S.INTERNAL),
        ErrorKind("ERR_PERMISSION_DENIED", 403, _S.PERMISSION_DENIED),
        # bindings
        ErrorKind("ERR_INVOKE_OUTPUT_BINDING", 500, _S.INTERNAL, grpc_basic=True),
        # conversation
        ErrorKind("ERR_CONVERSATION_NOT_FOUND", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_CONVERSATION_INVALID_PARMS", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_CONVERSATION_INVOKE", 500, _S.INTERNAL),
        ErrorKind("ERR_CONVERSATION_MISSING_INPUTS", 400, _S.INVALID_ARGUMENT),
        # crypto (messages.ErrCrypto*; "ERROR" is daprd's HTTP answer to an error with no code of its own)
        ErrorKind("ERR_CRYPTO", 500, _S.INTERNAL),
        ErrorKind("ERR_CRYPTO_KEY", 500, _S.INTERNAL),
        ErrorKind("ERR_CRYPTO_PROVIDER_NOT_FOUND", 400, _S.INVALID_ARGUMENT),
        ErrorKind("ERR_CRYPTO_PROVIDERS_NOT_CONFIGURED", 500, _S.INTERNAL),
        ErrorKind("ERROR", 500, _S.UNKNOWN),
        ErrorKind("ERR_API_UNIMPLEMENTED", 501, _S.UNIMPLEMENTED),
    ]
}


def error(
    code: str,
    message: str,
    *,
    http_status: int | None = None,
    grpc_status: grpc.StatusCode | None = None,
    **details: Any,
) -> DaprError:
    """Build the `DaprError` for one of daprd's error codes; `http_status`/`grpc_status` for the few codes
    daprd answers with another status in one place; `details` as `DaprError` takes them."""
    kind = ERRORS[code]
    if http_status is not None or grpc_status is not None:
        kind = replace(
            kind,
            http_status=kind.http_status if http_status is None else http_status,
            grpc_status=kind.grpc_status if grpc_status is None else grpc_status,
        )
    return DaprError(kind, message, **details)


# daprd's `CodeFromHTTPStatus` (pkg/messaging/v1/util.go): the gRPC status of an app's HTTP reply.
_HTTP_TO_GRPC = {
    408: grpc.StatusCode.CANCELLED,
    500: grpc.StatusCode.UNKNOWN,
    400: grpc.StatusCode.INTERNAL,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    403: grpc.StatusCode.PERMISSION_DENIED,
    401: grpc.StatusCode.UNAUTHENTICATED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


# Where Go's `http.StatusText` words a status differently from Python's `HTTPStatus`.
_GO_STATUS_TEXT = {
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    418: "I'm a teapot",
    422: "Unprocessable Entity",
}


def http_reply_error(status: int, body: bytes) -> DaprError:
    """daprd's `ErrorFromHTTPResponseCode`: the HTTP reason phrase as message and ErrorInfo reason, the
    status and the first 63 bytes of the body as metadata."""
    text = _GO_STATUS_TEXT.get(status, "")
    if not text:
        try:
            text = HTTPStatus(status).phrase
        except ValueError:
            text = ""
    detail = body[:63].decode("utf-8", "replace")
    info = error_details_pb2.ErrorInfo(
        reason=text, domain=DOMAIN, metadata={"http.code": str(status), "http.error_message": detail}
    )
    return error(
        "ERR_DIRECT_INVOKE",
        text,
        grpc_status=_HTTP_TO_GRPC.get(status, grpc.StatusCode.UNKNOWN),
        extra=[info],
    )
