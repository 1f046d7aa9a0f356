"""daprd's richer error model (dapr/kit errors) for the APIs that use it: HTTP answers `errorCode`,
`message` and a `details` list with a `google.rpc.ErrorInfo`; gRPC carries the same ErrorInfo in the status
details, so the SDK's `DaprGrpcError` reads the reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status  # type: ignore[import-untyped]

from sidecar.errors import DaprError, ErrorKind

__all__ = ["RichError", "abort", "rich"]

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class RichError(DaprError):
    """A `DaprError` whose HTTP body and gRPC status carry an ErrorInfo detail."""

    def __init__(self, kind: ErrorKind, message: str, metadata: Mapping[str, str]) -> None:
        super().__init__(kind, message)
        self.metadata = dict(metadata)

    def body(self) -> dict[str, Any]:
        info: dict[str, Any] = {"@type": _ERROR_INFO, "reason": self.code, "domain": "dapr.io"}
        if self.metadata:
            info["metadata"] = self.metadata
        return {"errorCode": self.code, "message": self.message, "details": [info]}

    def status(self) -> grpc.Status:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.ErrorInfo(reason=self.code, domain="dapr.io", metadata=self.metadata))
        proto = status_pb2.Status(code=self.grpc_status.value[0], message=self.message, details=[detail])
        return rpc_status.to_status(proto)


def rich(
    code: str, message: str, http_status: int, grpc_code: grpc.StatusCode, metadata: Mapping[str, str]
) -> RichError:
    return RichError(ErrorKind(code, http_status, grpc_code), message, metadata)


async def abort(context: grpc.aio.ServicerContext, exc: DaprError) -> None:
    """End an RPC with `exc`: with its details when it has them."""
    if isinstance(exc, RichError):
        await context.abort_with_status(exc.status())
    await context.abort(exc.grpc_status, exc.message)
