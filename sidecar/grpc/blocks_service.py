"""The Dapr gRPC methods of the Jobs, output bindings, distributed lock and configuration building blocks,
kept apart from `dapr_service` (which mixes them in) so each building block's wire lives in one place."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import grpc
from dapr.proto.runtime.v1 import binding_pb2, jobs_pb2, lock_pb2

from sidecar.bindings.output import OutputError, invoke_output
from sidecar.errors import DaprError
from sidecar.jobs.errors import abort

if TYPE_CHECKING:
    from sidecar.server import Sidecar

__all__ = ["BuildingBlocksMixin"]

log = logging.getLogger("sidecar.grpc")


class BuildingBlocksMixin:
    sidecar: Sidecar

    # -- jobs -----------------------------------------------------------------------------------

    async def ScheduleJob(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            job = request.job if request.HasField("job") else None
            await self.sidecar.jobs.schedule(job, request.overwrite)
        except DaprError as exc:
            await abort(context, exc)
        return jobs_pb2.ScheduleJobResponse()

    async def GetJob(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            job = await self.sidecar.jobs.get(request.name)
        except DaprError as exc:
            await abort(context, exc)
        return jobs_pb2.GetJobResponse(job=job)

    async def DeleteJob(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self.sidecar.jobs.delete(request.name)
        except DaprError as exc:
            await abort(context, exc)
        return jobs_pb2.DeleteJobResponse()

    async def ListJobs(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return jobs_pb2.ListJobsResponse(jobs=await self.sidecar.jobs.list())

    async def ListJobsAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return jobs_pb2.ListJobsResponseAlpha1(jobs=await self.sidecar.jobs.list())

    ScheduleJobAlpha1 = ScheduleJob
    GetJobAlpha1 = GetJob
    DeleteJobAlpha1 = DeleteJob

    # -- distributed lock -----------------------------------------------------------------------

    async def TryLockAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            ok = self.sidecar.locks.try_lock(
                request.store_name, request.resource_id, request.lock_owner, request.expiry_in_seconds
            )
        except DaprError as exc:
            await abort(context, exc)
        return lock_pb2.TryLockResponse(success=ok)

    async def UnlockAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            status = self.sidecar.locks.unlock(request.store_name, request.resource_id, request.lock_owner)
        except DaprError as exc:
            await abort(context, exc)
        return lock_pb2.UnlockResponse(status=status)  # type: ignore[arg-type]

    # -- output bindings ------------------------------------------------------------------------

    async def InvokeBinding(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        outputs = self.sidecar.components.output_bindings
        try:
            response = await invoke_output(
                outputs, request.name, request.operation, bytes(request.data), dict(request.metadata)
            )
        except OutputError as exc:
            await context.send_initial_metadata(
                [("metadata." + k.lower(), v) for k, v in exc.binding_metadata.items()]
            )
            await abort(context, exc)
        return binding_pb2.InvokeBindingResponse(data=response.data or b"", metadata=dict(response.metadata))
