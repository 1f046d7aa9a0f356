"""The Workflow API methods of `dapr.proto.runtime.v1.Dapr` (`*WorkflowBeta1`, and the deprecated `*Alpha1`
names daprd still serves), mixed into `dapr_service`: the request's fields into `WorkflowAPI`, its answer or
`DaprError` back (daprd's workflow errors are plain statuses, no details)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
from dapr.proto.runtime.v1 import workflow_pb2
from google.protobuf import empty_pb2

from sidecar.errors import DaprError
from sidecar.jobs.errors import abort as _abort

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["WorkflowMixin"]


class WorkflowMixin:
    sidecar: Sidecar

    async def StartWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            instance_id = await self.sidecar.workflow_api.start(
                request.workflow_name,
                request.instance_id,
                bytes(request.input),
                dict(request.options),
                request.app_id,
                context.time_remaining(),
            )
        except DaprError as exc:
            await _abort(context, exc)
        return workflow_pb2.StartWorkflowResponse(instance_id=instance_id)

    async def GetWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            found = await self.sidecar.workflow_api.get(
                request.instance_id, request.app_id, context.time_remaining()
            )
        except DaprError as exc:
            await _abort(context, exc)
        # daprd answers an unknown instance with its id alone, not an error
        return found or workflow_pb2.GetWorkflowResponse(instance_id=request.instance_id)

    async def RaiseEventWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self.sidecar.workflow_api.raise_event(
                request.instance_id,
                request.event_name,
                bytes(request.event_data) or None,  # proto3 bytes: empty is absent, as daprd sees it
                request.app_id,
                context.time_remaining(),
            )
        except DaprError as exc:
            await _abort(context, exc)
        return empty_pb2.Empty()

    async def TerminateWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._control("terminate", request, context)

    async def PauseWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._control("pause", request, context)

    async def ResumeWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._control("resume", request, context)

    async def PurgeWorkflowBeta1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._control("purge", request, context)

    async def _control(self, op: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self.sidecar.workflow_api.control(
                op, request.instance_id, request.app_id, context.time_remaining()
            )
        except DaprError as exc:
            await _abort(context, exc)
        return empty_pb2.Empty()

    StartWorkflowAlpha1 = StartWorkflowBeta1
    GetWorkflowAlpha1 = GetWorkflowBeta1
    RaiseEventWorkflowAlpha1 = RaiseEventWorkflowBeta1
    TerminateWorkflowAlpha1 = TerminateWorkflowBeta1
    PauseWorkflowAlpha1 = PauseWorkflowBeta1
    ResumeWorkflowAlpha1 = ResumeWorkflowBeta1
    PurgeWorkflowAlpha1 = PurgeWorkflowBeta1
