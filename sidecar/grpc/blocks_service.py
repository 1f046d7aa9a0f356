"""The Dapr gRPC methods of the Jobs, output bindings, distributed lock and configuration building blocks,
kept apart from `dapr_service` (which mixes them in) so each building block's wire lives in one place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import binding_pb2, configuration_pb2, jobs_pb2, lock_pb2

from sidecar.bindings.output import OutputError, invoke_output
from sidecar.configuration import Item, UpdateEvent
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

    async def DeleteJobsByPrefix(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.sidecar.jobs.delete_prefix(request.name_prefix)
        return jobs_pb2.DeleteJobsByPrefixResponse()

    async def DeleteJobsByPrefixAlpha1(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.sidecar.jobs.delete_prefix(request.name_prefix)
        return jobs_pb2.DeleteJobsByPrefixResponseAlpha1()

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

    # -- configuration --------------------------------------------------------------------------

    async def GetConfiguration(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            items = self.sidecar.configuration.get(request.store_name, list(request.keys))
        except DaprError as exc:
            await abort(context, exc)
        return configuration_pb2.GetConfigurationResponse(items=_items(items))

    async def SubscribeConfiguration(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        """daprd's stream: the subscription id first, then one message per update, until the client leaves
        or `UnsubscribeConfiguration` stops it."""
        api = self.sidecar.configuration
        queue: asyncio.Queue[UpdateEvent] = asyncio.Queue()
        try:
            subscription_id = api.open_stream(request.store_name, list(request.keys), queue)
        except DaprError as exc:
            await abort(context, exc)
        stopped = api.stream_stopped(subscription_id)
        try:
            yield configuration_pb2.SubscribeConfigurationResponse(id=subscription_id)
            stop = asyncio.ensure_future(stopped.wait())
            try:
                while True:
                    next_event = asyncio.ensure_future(queue.get())
                    await asyncio.wait({next_event, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not next_event.done():
                        next_event.cancel()
                        return
                    event = next_event.result()
                    yield configuration_pb2.SubscribeConfigurationResponse(
                        id=event.id, items=_items(event.items)
                    )
            finally:
                stop.cancel()
        finally:
            api.close_stream(request.store_name, subscription_id)

    async def UnsubscribeConfiguration(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        problem = self.sidecar.configuration.stop_stream(request.id)
        if problem is not None:
            return configuration_pb2.UnsubscribeConfigurationResponse(ok=False, message=problem)
        return configuration_pb2.UnsubscribeConfigurationResponse(ok=True)

    GetConfigurationAlpha1 = GetConfiguration
    SubscribeConfigurationAlpha1 = SubscribeConfiguration
    UnsubscribeConfigurationAlpha1 = UnsubscribeConfiguration


def _items(items: dict[str, Item] | Any) -> dict[str, Any]:
    return {
        key: common_pb2.ConfigurationItem(
            value=item.value, version=item.version, metadata=dict(item.metadata)
        )
        for key, item in items.items()
    }
