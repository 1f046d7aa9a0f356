"""Durable workflow engine behind the Dapr `TaskHubSidecarService` gRPC API (dapr.ext.workflow 1.19).

History, inbox, activities and timers live in the sidecar's SQLite file; turns are streamed to the
SDK's workers and committed one transaction each.
"""

from sidecar.workflows.control import WorkflowError
from sidecar.workflows.engine import WorkflowEngine
from sidecar.workflows.service import GRPC_SERVER_OPTIONS, add_workflow_service

__all__ = ["GRPC_SERVER_OPTIONS", "WorkflowEngine", "WorkflowError", "add_workflow_service"]
