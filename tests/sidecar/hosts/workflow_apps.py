"""The two apps of the cross-app workflow tests: `orders` (the workflows) and `billing` (activities and child
workflows, registered on its worker only), each a restartable sidecar with its own `WorkflowRuntime`."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dapr.ext.workflow import (
    DaprWorkflowClient,
    DaprWorkflowContext,
    TaskFailedError,
    WorkflowActivityContext,
    WorkflowRuntime,
    WorkflowStatus,
)

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.sidecar.workflows.support import fresh, start_worker, stop_worker
from tests.stack import sidecar_thread

ORDERS = "orders"
BILLING = "billing"
ran: Counter[str] = Counter()
gate = threading.Event()


def charge(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["charge"] += 1
    return amount * 2


def decline(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["decline"] += 1
    raise ValueError(f"card declined for {amount}")


def slow_charge(ctx: WorkflowActivityContext, amount: int) -> int:
    ran["slow_charge"] += 1
    gate.wait(20)
    return amount + 1


def invoice(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    """Billing's own workflow, run as a child of an orders workflow."""
    charged = yield ctx.call_activity(charge, input=amount)
    if charged > 100:
        raise ValueError(f"too much: {charged}")
    return {"charged": charged}


def order(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity("charge", input=amount, app_id=BILLING))


def order_declined(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    try:
        yield ctx.call_activity("decline", input=amount, app_id=BILLING)
    except TaskFailedError as exc:
        return [exc.details.error_type, exc.details.message]
    return "not failed"


def order_child(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    try:
        return (
            yield ctx.call_child_workflow(
                "invoice", input=amount, instance_id=f"{ctx.instance_id}-inv", app_id=BILLING
            )
        )
    except TaskFailedError as exc:
        return ["failed", exc.details.message]


def order_slow(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity("slow_charge", input=amount, app_id=BILLING))


def invoice_slow(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    return (yield ctx.call_activity(slow_charge, input=amount))


def order_child_slow(ctx: DaprWorkflowContext, amount: int):  # type: ignore[no-untyped-def]
    inv = f"{ctx.instance_id}-inv"
    return (yield ctx.call_child_workflow("invoice_slow", input=amount, instance_id=inv, app_id=BILLING))


def awaiting(ctx: DaprWorkflowContext, prefix: str):  # type: ignore[no-untyped-def]
    """Billing's workflow that ends on an event, driven by a client of orders' sidecar."""
    got = yield ctx.wait_for_external_event("go")
    return f"{prefix}{got}"


def register_orders(rt: WorkflowRuntime) -> None:
    for wf in (order, order_declined, order_child, order_slow, order_child_slow):
        rt.register_workflow(fresh(wf))


def register_billing(rt: WorkflowRuntime) -> None:
    rt.register_workflow(fresh(invoice))
    rt.register_workflow(fresh(invoice_slow))
    rt.register_workflow(fresh(awaiting))
    for act in (charge, decline, slow_charge):
        rt.register_activity(fresh(act))


class App:
    """One app's sidecar (restartable on its ports and data) and its workflow worker."""

    def __init__(
        self,
        data: Path,
        app_id: str,
        clock: ManualClock,
        registry: Path,
        register: Callable[[WorkflowRuntime], None],
    ) -> None:
        self.data, self.app_id, self.clock, self.registry, self.register = (
            data,
            app_id,
            clock,
            registry,
            register,
        )
        self.ports: dict[str, int] = {}
        self.sidecar: SidecarThread | None = None
        self.worker: WorkflowRuntime | None = None

    def start(self) -> App:
        self.sidecar = sidecar_thread(
            self.data, app_id=self.app_id, clock=self.clock, registry_dir=self.registry, **self.ports
        ).start()
        self.ports = {"http_port": self.sidecar.http_port, "grpc_port": self.sidecar.grpc_port}
        self.worker = start_worker(self.sidecar.grpc_port, self.register)
        return self

    def stop_sidecar(self) -> None:
        if self.sidecar is not None:
            self.sidecar.stop()
            self.sidecar = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            stop_worker(self.worker)
            self.worker = None

    def stop(self) -> None:
        self.stop_sidecar()
        self.stop_worker()

    @property
    def grpc_port(self) -> int:
        return self.ports["grpc_port"]


def finished(client: DaprWorkflowClient, iid: str, timeout: int = 20) -> tuple[WorkflowStatus, Any]:
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state is not None
    return state.runtime_status, json.loads(state.serialized_output or "null")
