"""Counting workflows that complete or fail, where every outcome passes exactly once: the worker's
`CompleteOrchestratorTask` call that reports a finished orchestration to the sidecar. A gRPC client
interceptor on the `WorkflowRuntime` sees it; replays and continue-as-new generations are not outcomes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import grpc

# Private: the durabletask protos ship only here, and no public SDK API reads what these read.
from dapr.ext.workflow._durabletask.internal import orchestration_pb2

from workflows.runtime import series_id_of
from workflows.series import SERIES_WORKFLOW

__all__ = ["COMPLETE_METHOD", "WorkflowOutcomeInterceptor", "workflow_of"]

log = logging.getLogger("api.channel.workflow_outcomes")

COMPLETE_METHOD: Final = "/TaskHubSidecarService/CompleteOrchestratorTask"

_OUTCOMES: Final = {
    orchestration_pb2.ORCHESTRATION_STATUS_COMPLETED: "completed",
    orchestration_pb2.ORCHESTRATION_STATUS_FAILED: "failed",
}


def workflow_of(instance_id: str) -> str:
    """The workflow an instance runs, as far as its id tells (a label, so a small fixed set)."""
    return SERIES_WORKFLOW if series_id_of(instance_id) is not None else "other"


def _outcome(request: Any) -> str | None:
    """The outcome ("completed" or "failed") if this orchestrator response ends its instance, else None."""
    for action in request.actions:
        if action.HasField("completeWorkflow"):
            return _OUTCOMES.get(action.completeWorkflow.workflowStatus)
    return None


class WorkflowOutcomeInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Calls `on_outcome(workflow, outcome)` once the sidecar has accepted a response that completes or
    fails an instance. Pass it in `WorkflowRuntime(interceptors=[...])` (it runs on the worker's threads).
    """

    def __init__(self, on_outcome: Callable[[str, str], None]) -> None:
        self._on_outcome = on_outcome

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        result = continuation(client_call_details, request)
        method = client_call_details.method
        if (method == COMPLETE_METHOD or method == COMPLETE_METHOD.encode()) and result.exception() is None:
            outcome = _outcome(request)
            if outcome is not None:
                try:
                    self._on_outcome(workflow_of(request.instanceId), outcome)
                except Exception:  # counting must never break the worker's stream
                    log.exception("could not count a workflow outcome")
        return result
