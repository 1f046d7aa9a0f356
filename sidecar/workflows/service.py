"""The `TaskHubSidecarService` gRPC servicer: thin translations from the SDK's RPCs to engine calls.

Registered with the SDK's own generated stubs (`_durabletask.internal`), so the wire always matches
what `dapr.ext.workflow` 1.19 sends; any other method of the service answers UNIMPLEMENTED by name.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import dapr.ext.workflow._durabletask.internal.orchestrator_service_pb2_grpc as stubs
import grpc
from google.protobuf import empty_pb2

from sidecar.workflows.control import WorkflowError
from sidecar.workflows.engine import WorkflowEngine
from sidecar.workflows.history import pack_repeated, pb
from sidecar.workflows.routing import foreign_target
from sidecar.workflows.status import workflow_state
from sidecar.workflows.store import InstanceRow

__all__ = ["GRPC_SERVER_OPTIONS", "WorkflowServicer", "add_workflow_service"]

log = logging.getLogger("sidecar.workflows.service")

SERVICE = "TaskHubSidecarService"

# Server options the SDK's streams need (contract §1): answer the client's 30 s keepalive pings on
# idle streams instead of GOAWAY too_many_pings, and accept results of any size.
GRPC_SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
)

R = TypeVar("R")
Handler = Callable[[Any, Any, Any], Awaitable[R]]


# The client requests whose router may name another app (dapr.ext.workflow's `app_id=`): method -> its request
# and response types. daprd runs each on the target app's workflow actor; here that app's sidecar runs it.
_ROUTABLE: dict[str, tuple[Any, Any]] = {
    "StartInstance": (pb.CreateInstanceRequest, pb.CreateInstanceResponse),
    "GetInstance": (pb.GetInstanceRequest, pb.GetInstanceResponse),
    "WaitForInstanceStart": (pb.GetInstanceRequest, pb.GetInstanceResponse),
    "WaitForInstanceCompletion": (pb.GetInstanceRequest, pb.GetInstanceResponse),
    "RaiseEvent": (pb.RaiseEventRequest, pb.RaiseEventResponse),
    "TerminateInstance": (pb.TerminateRequest, pb.TerminateResponse),
    "SuspendInstance": (pb.SuspendRequest, pb.SuspendResponse),
    "ResumeInstance": (pb.ResumeRequest, pb.ResumeResponse),
    "PurgeInstances": (pb.PurgeInstancesRequest, pb.PurgeInstancesResponse),
    "RerunWorkflowFromEvent": (pb.RerunWorkflowFromEventRequest, pb.RerunWorkflowFromEventResponse),
}


def _mapped(fn: Handler[R]) -> Handler[R]:
    """Turn `WorkflowError` into the gRPC status it names; send a request routed to another app to its
    sidecar, and answer with what that sidecar answered."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: Any) -> R:
        try:
            target = foreign_target(request, self._engine.app_id) if fn.__name__ in _ROUTABLE else None
            if target is None:
                return await fn(self, request, context)
            body = request.SerializeToString()
            answer = await self._engine.call_app(target, fn.__name__, body, context.time_remaining())
            response: R = _ROUTABLE[fn.__name__][1].FromString(answer)
            return response
        except WorkflowError as exc:
            await context.abort(exc.status, exc.message)
            raise  # abort() raises; this line only satisfies the type checker

    return wrapper


def _response(row: InstanceRow, with_payloads: bool) -> Any:
    return pb.GetInstanceResponse(exists=True, workflowState=workflow_state(row, with_payloads))


class WorkflowServicer(stubs.TaskHubSidecarServiceServicer):
    def __init__(self, engine: WorkflowEngine) -> None:
        self._engine = engine
        engine.routed_requests = self._run_routed

    async def _run_routed(self, fields: Mapping[str, str], body: bytes) -> bytes:
        """A client request another app's sidecar routed here (its router names this app): run as if a
        client of this app had sent it, within its client's deadline; WorkflowError reaches that sidecar
        with its status."""
        method = fields.get("method", "")
        if method not in _ROUTABLE:
            raise WorkflowError(grpc.StatusCode.UNIMPLEMENTED, f"{method} cannot be routed to another app")
        request = _ROUTABLE[method][0].FromString(body)
        if foreign_target(request, self._engine.app_id) is not None:
            raise WorkflowError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{method} for app {request.router.targetAppID!r} reached app {self._engine.app_id!r}",
            )
        handler = getattr(type(self), method).__wrapped__
        deadline = float(fields["deadline"]) if fields.get("deadline") else None
        try:
            async with asyncio.timeout(deadline):
                response = await handler(self, request, None)
        except TimeoutError:
            raise WorkflowError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"{method} routed from another app: deadline exceeded"
            ) from None
        return bytes(response.SerializeToString())

    async def Hello(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    async def GetWorkItems(self, request: Any, context: Any) -> AsyncIterator[Any]:
        health_ping = pb.WORKER_CAPABILITY_HEALTH_PING in request.capabilities
        stateful = pb.WORKER_CAPABILITY_STATEFUL_HISTORY in request.capabilities
        stream = self._engine.open_stream(health_ping, stateful)
        try:
            while True:
                item = await self._engine.next_item(stream)
                if item is None:
                    return
                yield item
        finally:
            self._engine.close_stream(stream)

    @_mapped
    async def CompleteOrchestratorTask(self, request: Any, context: Any) -> Any:
        await self._engine.complete_turn(request)
        return pb.CompleteTaskResponse()

    CompleteWorkflowTask = CompleteOrchestratorTask

    @_mapped
    async def CompleteActivityTask(self, request: Any, context: Any) -> Any:
        await self._engine.complete_activity(request)
        return pb.CompleteTaskResponse()

    @_mapped
    async def StartInstance(self, request: Any, context: Any) -> Any:
        instance_id = await self._engine.start_instance(request)
        return pb.CreateInstanceResponse(instanceId=instance_id)

    @_mapped
    async def GetInstance(self, request: Any, context: Any) -> Any:
        row = await self._engine.get_instance(request.instanceId)
        if row is None:
            return pb.GetInstanceResponse(exists=False)
        return _response(row, request.getInputsAndOutputs)

    @_mapped
    async def WaitForInstanceStart(self, request: Any, context: Any) -> Any:
        row = await self._engine.wait_started(request.instanceId)
        return _response(row, request.getInputsAndOutputs)

    @_mapped
    async def WaitForInstanceCompletion(self, request: Any, context: Any) -> Any:
        row = await self._engine.wait_completed(request.instanceId)
        return _response(row, request.getInputsAndOutputs)

    @_mapped
    async def RaiseEvent(self, request: Any, context: Any) -> Any:
        await self._engine.raise_event(request)
        return pb.RaiseEventResponse()

    @_mapped
    async def TerminateInstance(self, request: Any, context: Any) -> Any:
        await self._engine.terminate(request)
        return pb.TerminateResponse()

    @_mapped
    async def SuspendInstance(self, request: Any, context: Any) -> Any:
        await self._engine.suspend(request)
        return pb.SuspendResponse()

    @_mapped
    async def ResumeInstance(self, request: Any, context: Any) -> Any:
        await self._engine.resume(request)
        return pb.ResumeResponse()

    @_mapped
    async def PurgeInstances(self, request: Any, context: Any) -> Any:
        count, complete = await self._engine.purge(request)
        response = pb.PurgeInstancesResponse(deletedInstanceCount=count)
        response.isComplete.value = complete
        return response

    @_mapped
    async def ListInstanceIDs(self, request: Any, context: Any) -> Any:
        after = request.continuationToken if request.HasField("continuationToken") else None
        size = request.pageSize if request.HasField("pageSize") and request.pageSize else None
        ids, token = await self._engine.list_ids(after, size)
        response = pb.ListInstanceIDsResponse(instanceIds=ids)
        if token is not None:
            response.continuationToken = token
        return response

    @_mapped
    async def GetInstanceHistory(self, request: Any, context: Any) -> Any:
        blobs = await self._engine.history(request.instanceId)
        response = pb.GetInstanceHistoryResponse()
        response.MergeFromString(pack_repeated(1, blobs))
        return response

    @_mapped
    async def RerunWorkflowFromEvent(self, request: Any, context: Any) -> Any:
        new_id = await self._engine.rerun(request)
        return pb.RerunWorkflowFromEventResponse(newInstanceID=new_id)


class _Unimplemented(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Names the method in the UNIMPLEMENTED status (e.g. Microsoft-only AbandonTask*WorkItem)."""

    def service(self, handler_call_details: Any) -> Any:
        method = str(handler_call_details.method)
        if not method.startswith(f"/{SERVICE}/"):
            return None
        name = method.rsplit("/", 1)[-1]

        async def refuse(request: Any, context: Any) -> None:
            log.warning("unimplemented workflow method %s called", name)
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"method {SERVICE}/{name} is not implemented by this sidecar",
            )

        return grpc.unary_unary_rpc_method_handler(refuse)


def add_workflow_service(server: grpc.aio.Server, engine: WorkflowEngine) -> None:
    """Register the TaskHubSidecarService servicer on the sidecar's grpc.aio server."""
    stubs.add_TaskHubSidecarServiceServicer_to_server(WorkflowServicer(engine), server)  # type: ignore[no-untyped-call]
    server.add_generic_rpc_handlers((_Unimplemented(),))
