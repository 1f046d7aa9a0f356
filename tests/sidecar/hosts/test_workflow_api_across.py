"""The Workflow API's `appID` (HTTP query, gRPC `app_id`): requests to orders' sidecar that name billing act
on billing's own instances, run by billing's worker, as daprd's workflow actor of that app runs them."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from dapr.ext.workflow import DaprWorkflowClient
from dapr.proto.runtime.v1 import dapr_pb2_grpc, workflow_pb2

from tests.sidecar.hosts.workflow_apps import BILLING, App
from tests.sidecar.workflows.support import close_client, eventually


@pytest.fixture(scope="module")
def billing_client(workflow_apps: tuple[App, App]) -> Iterator[DaprWorkflowClient]:
    wf_client = DaprWorkflowClient(host="127.0.0.1", port=str(workflow_apps[1].grpc_port))
    yield wf_client
    close_client(wf_client)


def test_http_requests_naming_another_app_act_on_its_instance(
    workflow_apps: tuple[App, App], billing_client: DaprWorkflowClient
) -> None:
    orders = workflow_apps[0]
    base = f"http://127.0.0.1:{orders.ports['http_port']}/v1.0/workflows/dapr"
    with httpx.Client(base_url=base, timeout=30) as http:
        started = http.post(f"/awaiting/start?instanceID=api-remote-1&appID={BILLING}", content=b'"paid:"')
        assert started.status_code == 202, started.text
        assert billing_client.wait_for_workflow_start("api-remote-1", timeout_in_seconds=10) is not None
        assert http.get("/api-remote-1").status_code == 404  # not an instance of orders
        got = http.get(f"/api-remote-1?appID={BILLING}").json()
        assert (got["workflowName"], got["runtimeStatus"]) == ("awaiting", "RUNNING")
        assert http.post(f"/api-remote-1/raiseEvent/go?appID={BILLING}", content=b'"42"').status_code == 202

        def status() -> str:
            return str(http.get(f"/api-remote-1?appID={BILLING}").json()["runtimeStatus"])

        eventually(lambda: status() == "COMPLETED", timeout=10)
        assert http.get(f"/api-remote-1?appID={BILLING}").json()["properties"]["dapr.workflow.output"] == (
            '"paid:42"'
        )
        assert http.post(f"/api-remote-1/purge?appID={BILLING}").status_code == 202
    assert billing_client.get_workflow_state("api-remote-1") is None


def test_grpc_requests_naming_another_app_act_on_its_instance(
    workflow_apps: tuple[App, App], billing_client: DaprWorkflowClient
) -> None:
    orders = workflow_apps[0]
    with grpc.insecure_channel(f"127.0.0.1:{orders.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        start = workflow_pb2.StartWorkflowRequest(
            instance_id="api-remote-2", workflow_component="dapr", workflow_name="awaiting", app_id=BILLING
        )
        stub.StartWorkflowBeta1(start, timeout=30)
        assert billing_client.wait_for_workflow_start("api-remote-2", timeout_in_seconds=10) is not None
        terminate = workflow_pb2.TerminateWorkflowRequest(
            instance_id="api-remote-2", workflow_component="dapr", app_id=BILLING
        )
        stub.TerminateWorkflowBeta1(terminate, timeout=30)
        get = workflow_pb2.GetWorkflowRequest(
            instance_id="api-remote-2", workflow_component="dapr", app_id=BILLING
        )
        assert stub.GetWorkflowBeta1(get, timeout=30).runtime_status == "TERMINATED"
        missing = workflow_pb2.TerminateWorkflowRequest(
            instance_id="nobody", workflow_component="dapr", app_id=BILLING
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.TerminateWorkflowBeta1(missing, timeout=30)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND  # billing's NOT_FOUND, as daprd maps it
