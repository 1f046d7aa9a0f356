"""daprd's Workflow management API (`pkg/api/universal/workflow.go`): validation, daprd's error codes and the
`GetWorkflowResponse` shape, over the same engine requests `TaskHubSidecarService` serves, so the HTTP
routes (routes.py) and the gRPC `*WorkflowBeta1/Alpha1` methods only convert at their boundary."""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import grpc
from dapr.proto.runtime.v1 import workflow_pb2

from sidecar.errors import DaprError, ErrorKind, error
from sidecar.workflows.control import WorkflowError
from sidecar.workflows.engine import WorkflowEngine
from sidecar.workflows.history import pb, timestamp
from sidecar.workflows.routing import foreign_target
from sidecar.workflows.status import workflow_state

__all__ = ["CONTROLS", "WorkflowAPI", "not_found"]

log = logging.getLogger("sidecar.workflows.api")

R = TypeVar("R")
Deadline = float | None  # seconds the caller still waits; None: no limit

_MAX_ID_BYTES = 64  # daprd's maxInstanceIDLength, counted in bytes as Go's len() does
_START_TIME = "dapr.workflow.start_time"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

_BAD, _INTERNAL = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL
# daprd's APIErrors of the workflow API (pkg/messages/predefined.go): status only, no error details.
_KINDS = {
    k.code: k
    for k in [
        ErrorKind("ERR_START_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_GET_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_WORKFLOW_NAME_MISSING", 400, _BAD),
        ErrorKind("ERR_INSTANCE_ID_TOO_LONG", 400, _BAD),
        ErrorKind("ERR_INSTANCE_ID_INVALID", 400, _BAD),
        ErrorKind("ERR_INSTANCE_ID_PROVIDED_MISSING", 400, _BAD),
        ErrorKind("ERR_INSTANCE_ID_NOT_FOUND", 404, grpc.StatusCode.NOT_FOUND),
        ErrorKind("ERR_TERMINATE_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_WORKFLOW_EVENT_NAME_MISSING", 400, _BAD),
        ErrorKind("ERR_RAISE_EVENT_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_PAUSE_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_RESUME_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_PURGE_WORKFLOW", 500, _INTERNAL),
        ErrorKind("ERR_WORKFLOW_APP_ID_INVALID", 400, _BAD),
    ]
}

# daprd's statusMap: durabletask's OrchestrationStatus numbers 0-7; any other (STALLED) is "UNKNOWN".
_STATUS = {
    0: "RUNNING",
    1: "COMPLETED",
    2: "CONTINUED_AS_NEW",
    3: "FAILED",
    4: "CANCELED",
    5: "TERMINATED",
    6: "PENDING",
    7: "SUSPENDED",
}


@dataclass(frozen=True)
class _Control:
    """A request on an existing instance: its TaskHubSidecarService method and request (sent to another
    app's sidecar), the engine's method, daprd's error code and wording for a refusal, and whether a
    missing instance is daprd's 404."""

    method: str
    request: Any
    engine: str
    code: str
    wording: str
    missing_is_404: bool = False
    recursive: bool = False


_RAISE = _Control(
    "RaiseEvent",
    pb.RaiseEventRequest,
    "raise_event",
    "ERR_RAISE_EVENT_WORKFLOW",
    "error raising event on workflow '{id}': failed to raise event {event} on workflow {id}: {cause}",
)
CONTROLS = {
    "terminate": _Control(
        "TerminateInstance",
        pb.TerminateRequest,
        "terminate",
        "ERR_TERMINATE_WORKFLOW",
        "error terminating workflow '{id}': failed to terminate workflow {id}: {cause}",
        missing_is_404=True,
        recursive=True,
    ),
    "pause": _Control(
        "SuspendInstance",
        pb.SuspendRequest,
        "suspend",
        "ERR_PAUSE_WORKFLOW",
        "error pausing workflow {id}: failed to pause workflow {id}: {cause}",
    ),
    "resume": _Control(
        "ResumeInstance",
        pb.ResumeRequest,
        "resume",
        "ERR_RESUME_WORKFLOW",
        "error resuming workflow {id}: failed to resume workflow {id}: {cause}",
    ),
    "purge": _Control(
        "PurgeInstances",
        pb.PurgeInstancesRequest,
        "purge",
        "ERR_PURGE_WORKFLOW",
        "error purging workflow {id}: failed to Purge workflow {id}: {cause}",
        missing_is_404=True,
        recursive=True,
    ),
}


def _error(code: str, message: str) -> DaprError:
    return DaprError(_KINDS[code], message)


def not_found(instance_id: str) -> DaprError:
    return _error(
        "ERR_INSTANCE_ID_NOT_FOUND", f"unable to find workflow with the provided instance ID: {instance_id}"
    )


def _check_id(instance_id: str, creating: bool) -> None:
    """daprd's validateInstanceID: present; on create also at most 64 bytes of letters, digits, - and _."""
    if not instance_id:
        raise _error("ERR_INSTANCE_ID_PROVIDED_MISSING", "no instance ID was provided")
    if not creating:
        return
    if len(instance_id.encode()) > _MAX_ID_BYTES:
        raise _error(
            "ERR_INSTANCE_ID_TOO_LONG",
            f"workflow instance ID exceeds the max length of {_MAX_ID_BYTES} characters",
        )
    for c in instance_id:  # Go's unicode.IsLetter / IsDigit: categories L* and Nd
        if c not in "-_" and not c.isalpha() and unicodedata.category(c) != "Nd":
            raise _error(
                "ERR_INSTANCE_ID_INVALID",
                f"workflow instance ID '{instance_id}' is invalid: only alphanumeric and underscore "
                "characters are allowed",
            )


def _start_time(options: Mapping[str, str], name: str) -> Any | None:
    """The `dapr.workflow.start_time` option (RFC3339, as Go's time.Parse reads it) as a Timestamp."""
    if _START_TIME not in options:
        return None
    text = options[_START_TIME]
    try:
        if not _RFC3339.fullmatch(text):
            raise ValueError(text)
        return timestamp(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise _error(
            "ERR_START_WORKFLOW",
            f"error starting workflow '{name}': start times must be in RFC3339 format "
            '(e.g. "2009-11-10T23:00:00Z")',
        ) from None


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        # Go's protobuf refuses to marshal a string that is not UTF-8; daprd fails the call likewise.
        raise error("ERR_MALFORMED_REQUEST", f"the {what} is not valid UTF-8") from None


def _response(instance_id: str, state: Any) -> Any:
    """daprd's GetWorkflowResponse of an instance's `WorkflowState`."""
    answer = workflow_pb2.GetWorkflowResponse(
        instance_id=instance_id,
        workflow_name=state.name,
        runtime_status=_STATUS.get(state.workflowStatus, "UNKNOWN"),
    )
    answer.created_at.CopyFrom(state.createdTimestamp)
    answer.last_updated_at.CopyFrom(state.lastUpdatedTimestamp)
    props = answer.properties
    if state.HasField("customStatus"):
        props["dapr.workflow.custom_status"] = state.customStatus.value
    if state.HasField("input"):
        props["dapr.workflow.input"] = state.input.value
    failed = state.HasField("failureDetails")
    if state.HasField("output") and not failed:  # a failure is reported below, not as output
        props["dapr.workflow.output"] = state.output.value
    if failed:
        props["dapr.workflow.failure.error_type"] = state.failureDetails.errorType
        props["dapr.workflow.failure.error_message"] = state.failureDetails.errorMessage
        if state.failureDetails.HasField("stackTrace"):
            props["dapr.workflow.failure.stack_trace"] = state.failureDetails.stackTrace.value
    return answer


class WorkflowAPI:
    """The Workflow API's requests; each raises `DaprError` with daprd's code. `app_id` names the app whose
    workflow it is (empty: this one); another app's sidecar runs it, as daprd's workflow actor of that app
    would. `deadline` is the seconds the caller still waits (None: no limit)."""

    def __init__(self, engine: WorkflowEngine) -> None:
        self._engine = engine

    async def start(
        self,
        name: str,
        instance_id: str,
        data: bytes,
        options: Mapping[str, str],
        app_id: str = "",
        deadline: Deadline = None,
    ) -> str:
        instance_id = instance_id or str(uuid.uuid4())
        _check_id(instance_id, creating=True)
        if not name:
            raise _error("ERR_WORKFLOW_NAME_MISSING", "workflow name is not configured")
        request = pb.CreateInstanceRequest(instanceId=instance_id, name=name)
        request.input.value = _text(data, "workflow input")  # daprd always sets it, empty or not
        start_at = _start_time(options, name)
        if start_at is not None:
            request.scheduledStartTimestamp.CopyFrom(start_at)
        target = self._target(request, app_id)

        def failed(exc: WorkflowError) -> DaprError:
            return _error(
                "ERR_START_WORKFLOW",
                f"error starting workflow '{name}': unable to start workflow: {exc.message}",
            )

        if target is None:
            return await self._run(self._engine.start_instance(request), failed)
        answer = await self._remote(target, "StartInstance", request, deadline, failed)
        return str(pb.CreateInstanceResponse.FromString(answer).instanceId)

    async def get(self, instance_id: str, app_id: str = "", deadline: Deadline = None) -> Any | None:
        """daprd's GetWorkflowResponse, None for an unknown instance (daprd's gRPC API answers it with only
        the id, its HTTP API with ERR_INSTANCE_ID_NOT_FOUND)."""
        _check_id(instance_id, creating=False)
        request = pb.GetInstanceRequest(instanceId=instance_id, getInputsAndOutputs=True)
        target = self._target(request, app_id)

        def failed(exc: WorkflowError) -> DaprError:
            return _error(
                "ERR_GET_WORKFLOW",
                f"error while getting workflow info on instance '{instance_id}': failed to get workflow "
                f"metadata for '{instance_id}': {exc.message}",
            )

        if target is None:
            row = await self._run(self._engine.get_instance(instance_id), failed)
            return None if row is None else _response(instance_id, workflow_state(row, True))
        found = pb.GetInstanceResponse.FromString(
            await self._remote(target, "GetInstance", request, deadline, failed)
        )
        return _response(instance_id, found.workflowState) if found.exists else None

    async def control(self, op: str, instance_id: str, app_id: str = "", deadline: Deadline = None) -> None:
        """`op` ("terminate", "pause", "resume" or "purge") on an instance; terminate and purge take its
        children too (daprd always recurses), terminate returns once the instance is terminal."""
        spec = CONTROLS[op]
        request = spec.request(instanceId=instance_id)
        if spec.recursive:
            request.recursive = True
        await self._control(spec, request, app_id, deadline, getattr(self._engine, spec.engine))

    async def raise_event(
        self,
        instance_id: str,
        event_name: str,
        data: bytes | None,
        app_id: str = "",
        deadline: Deadline = None,
    ) -> None:
        """Raise `event_name` with `data` as its payload (None: no payload)."""
        _check_id(instance_id, creating=False)
        if not event_name:
            raise _error("ERR_WORKFLOW_EVENT_NAME_MISSING", "missing workflow event name")
        request = pb.RaiseEventRequest(instanceId=instance_id, name=event_name)
        if data is not None:
            request.input.value = _text(data, "event data")
        await self._control(_RAISE, request, app_id, deadline, self._engine.raise_event)

    # -- the engine, here or on the app's sidecar ------------------------------------------------------

    async def _control(
        self,
        spec: _Control,
        request: Any,
        app_id: str,
        deadline: Deadline,
        local: Callable[[Any], Awaitable[Any]],
    ) -> None:
        """One request on an existing instance, with daprd's checks and `spec`'s error wording."""
        instance_id = request.instanceId
        _check_id(instance_id, creating=False)
        target = self._target(request, app_id)

        def failed(exc: WorkflowError) -> DaprError:
            if exc.status == grpc.StatusCode.NOT_FOUND and spec.missing_is_404:
                return not_found(instance_id)
            name = request.name if spec is _RAISE else ""
            return _error(spec.code, spec.wording.format(id=instance_id, event=name, cause=exc.message))

        if target is None:
            await self._run(local(request), failed)
        else:
            await self._remote(target, spec.method, request, deadline, failed)

    def _target(self, request: Any, app_id: str) -> str | None:
        """The other app `app_id` names (None: this app); daprd's ERR_WORKFLOW_APP_ID_INVALID for a bad id."""
        if not app_id:
            return None
        request.router.sourceAppID = self._engine.app_id
        request.router.targetAppID = app_id
        try:
            return foreign_target(request, self._engine.app_id)
        except WorkflowError as exc:
            raise _error("ERR_WORKFLOW_APP_ID_INVALID", exc.message) from None

    async def _run(self, call: Awaitable[R], failed: Callable[[WorkflowError], DaprError]) -> R:
        try:
            return await call
        except WorkflowError as exc:
            log.debug("workflow API request refused: %s", exc.message)
            raise failed(exc) from None

    async def _remote(
        self,
        target: str,
        method: str,
        request: Any,
        deadline: Deadline,
        failed: Callable[[WorkflowError], DaprError],
    ) -> bytes:
        body = request.SerializeToString()
        return await self._run(self._engine.call_app(target, method, body, deadline), failed)
