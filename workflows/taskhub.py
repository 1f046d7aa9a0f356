"""Direct calls to the sidecar's `TaskHubSidecarService` for what `DaprWorkflowClient` does not give:
history events with all their fields (timer fire times, event payloads, activity inputs and results), and
the filtered purge housekeeping uses.

The SDK's `get_workflow_history` keeps only names and ids; a readable timeline needs the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

# Private: the durabletask protos ship only here, and no public SDK API reads what these read.
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as service_pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as service_grpc
from dapr.ext.workflow.aio import DaprWorkflowClient
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["TaskHub", "close_workflow_client"]


class TaskHub:
    """A grpc.aio channel to the sidecar's workflow service, opened lazily on the caller's loop."""

    def __init__(self, address: str, api_token: str | None = None) -> None:
        self._address = address
        self._metadata = (("dapr-api-token", api_token),) if api_token else ()
        self._channel: tuple[asyncio.AbstractEventLoop, grpc.aio.Channel, Any] | None = None

    def _stub(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._channel is None or self._channel[0] is not loop:
            channel = grpc.aio.insecure_channel(self._address)
            stub = service_grpc.TaskHubSidecarServiceStub(channel)  # type: ignore[no-untyped-call]
            self._channel = (loop, channel, stub)
        return self._channel[2]

    async def history(self, instance_id: str) -> list[Any] | None:
        """The instance's history events (`HistoryEvent` protos, oldest first); None if it does not exist."""
        request = service_pb.GetInstanceHistoryRequest(instanceId=instance_id)
        try:
            response = await self._stub().GetInstanceHistory(request, metadata=self._metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND or "no such instance" in (exc.details() or ""):
                return None
            raise
        return list(response.events)

    async def purge_finished(self, created_before: float) -> tuple[int, bool]:
        """One batch of the filtered purge: terminal instances (with their children) created at or before
        `created_before` (epoch seconds). Returns how many went, and whether none is left."""
        request = service_pb.PurgeInstancesRequest(
            purgeInstanceFilter=service_pb.PurgeInstanceFilter(createdTimeTo=_timestamp(created_before)),
            recursive=True,
        )
        response = await self._stub().PurgeInstances(request, metadata=self._metadata, timeout=60)
        return response.deletedInstanceCount, response.isComplete.value

    async def aclose(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None and channel[0] is asyncio.get_running_loop():
            await channel[1].close()


def _timestamp(instant: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(instant * 1e9))
    return stamp


async def close_workflow_client(client: DaprWorkflowClient) -> None:
    """Close the aio `DaprWorkflowClient`'s channel (the SDK 1.19 client has no public close)."""
    inner = getattr(client, "_DaprWorkflowClient__obj", None)
    if inner is not None:
        await inner.aclose()
