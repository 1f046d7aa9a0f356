"""Service invocation (`/v1.0/invoke`, gRPC `InvokeService`) and the callee's access control list."""

from __future__ import annotations

from sidecar.invoke.acl import AccessControlList, CallerIdentity
from sidecar.invoke.invoker import (
    InvokeFailure,
    Invoker,
    InvokeRequest,
    InvokeResponse,
    InvokeTarget,
    LocalResolver,
    Resolver,
)

__all__ = [
    "AccessControlList",
    "CallerIdentity",
    "InvokeFailure",
    "InvokeRequest",
    "InvokeResponse",
    "InvokeTarget",
    "Invoker",
    "LocalResolver",
    "Resolver",
]
