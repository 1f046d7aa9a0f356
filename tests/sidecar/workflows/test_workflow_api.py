"""daprd's Workflow management API on the embedded sidecar: HTTP `/v1.0*/workflows/dapr/...` and the gRPC
`*WorkflowBeta1/Alpha1` methods (through the SDK's generated `DaprStub`), driving workflows that a real SDK
worker runs, with daprd's response shapes and error codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dapr.ext.workflow as wf
import grpc
import httpx
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, workflow_pb2

from sidecar.clock import ManualClock
from sidecar.thread import SidecarThread
from tests.sidecar.workflows.support import eventually, running_worker
from tests.stack import sidecar_thread

Response = httpx.Response
CUSTOM = "dapr.workflow.custom_status"


def approval(ctx: wf.DaprWorkflowContext, order: Any) -> Any:
    ctx.set_custom_status("waiting")
    decision = yield ctx.wait_for_external_event("approve")
    return {"order": order, "decision": decision}


def doomed(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    raise ValueError("no such order")
    yield  # a generator, as the SDK's workflows are  # pragma: no cover


def register(runtime: wf.WorkflowRuntime) -> None:
    runtime.register_workflow(approval)
    runtime.register_workflow(doomed)


@pytest.fixture(scope="module")
def dapr(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[SidecarThread]:
    data: Path = tmp_path_factory.mktemp("wfapi")
    with sidecar_thread(data, app_id="wfapi", clock=clock) as sidecar:
        with running_worker(sidecar.grpc_port, register):
            yield sidecar


@pytest.fixture(scope="module")
def http(dapr: SidecarThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{dapr.http_port}", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stub(dapr: SidecarThread) -> Iterator[Any]:
    with grpc.insecure_channel(f"127.0.0.1:{dapr.grpc_port}") as channel:
        yield dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]


def _status(http: httpx.Client, instance_id: str) -> str:
    return str(http.get(f"/v1.0/workflows/dapr/{instance_id}").json()["runtimeStatus"])


def _props(http: httpx.Client, instance_id: str) -> dict[str, str]:
    return dict(http.get(f"/v1.0/workflows/dapr/{instance_id}").json()["properties"])


def _error(reply: Response, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["errorCode"] == code
    return str(body["message"])


def _rpc_error(call: Any, request: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=30)
    assert caught.value.code() == code, caught.value.details()
    return str(caught.value.details())


def test_http_start_get_raise_event(http: httpx.Client) -> None:
    started = http.post("/v1.0/workflows/dapr/approval/start?instanceID=order-1", content=b'{"id": 1}')
    assert started.status_code == 202
    assert started.json() == {"instanceID": "order-1"}
    eventually(lambda: _status(http, "order-1") == "RUNNING")
    running = http.get("/v1.0/workflows/dapr/order-1")
    assert running.status_code == 200
    body = running.json()
    assert body["instanceID"] == "order-1"
    assert body["workflowName"] == "approval"
    assert body["createdAt"].endswith("Z") and body["lastUpdatedAt"].endswith("Z")
    assert body["properties"]["dapr.workflow.input"] == '{"id": 1}'  # the body as it was sent
    props = eventually(lambda: _props(http, "order-1") if _props(http, "order-1").get(CUSTOM) else None)
    assert props[CUSTOM] == "waiting"

    raised = http.post("/v1.0/workflows/dapr/order-1/raiseEvent/approve", content=b'"yes"')
    assert raised.status_code == 202
    eventually(lambda: _status(http, "order-1") == "COMPLETED")
    props = _props(http, "order-1")
    assert json.loads(props["dapr.workflow.output"]) == {"order": {"id": 1}, "decision": "yes"}


def test_http_start_without_an_id_makes_one(http: httpx.Client) -> None:
    started = http.post("/v1.0-beta1/workflows/dapr/approval/start", content=b"")
    assert started.status_code == 202
    instance_id = started.json()["instanceID"]
    assert len(instance_id) == 36  # daprd's uuid.NewRandom().String()
    eventually(lambda: _status(http, instance_id) == "RUNNING")
    # daprd always passes the body as the input, an empty one too
    assert (
        http.get(f"/v1.0-alpha1/workflows/dapr/{instance_id}").json()["properties"]["dapr.workflow.input"]
        == ""
    )
    assert http.post(f"/v1.0/workflows/dapr/{instance_id}/terminate").status_code == 202


def test_grpc_beta1_start_get_raise_event(stub: Any) -> None:
    started = stub.StartWorkflowBeta1(
        workflow_pb2.StartWorkflowRequest(
            instance_id="order-2", workflow_component="dapr", workflow_name="approval", input=b"2"
        ),
        timeout=30,
    )
    assert started.instance_id == "order-2"

    def get() -> Any:
        return stub.GetWorkflowBeta1(
            workflow_pb2.GetWorkflowRequest(instance_id="order-2", workflow_component="dapr"), timeout=30
        )

    eventually(lambda: get().runtime_status == "RUNNING")
    assert get().workflow_name == "approval"
    assert get().properties["dapr.workflow.input"] == "2"
    stub.RaiseEventWorkflowBeta1(
        workflow_pb2.RaiseEventWorkflowRequest(
            instance_id="order-2", workflow_component="dapr", event_name="approve", event_data=b'"no"'
        ),
        timeout=30,
    )
    eventually(lambda: get().runtime_status == "COMPLETED")
    assert json.loads(get().properties["dapr.workflow.output"]) == {"order": 2, "decision": "no"}


def test_grpc_alpha1_names_are_served(stub: Any) -> None:
    request = workflow_pb2.StartWorkflowRequest(workflow_component="dapr", workflow_name="approval")
    instance_id = stub.StartWorkflowAlpha1(request, timeout=30).instance_id
    get = workflow_pb2.GetWorkflowRequest(instance_id=instance_id, workflow_component="dapr")
    eventually(lambda: stub.GetWorkflowAlpha1(get, timeout=30).runtime_status == "RUNNING")
    stub.TerminateWorkflowAlpha1(
        workflow_pb2.TerminateWorkflowRequest(instance_id=instance_id, workflow_component="dapr"), timeout=30
    )
    assert stub.GetWorkflowAlpha1(get, timeout=30).runtime_status == "TERMINATED"


def test_pause_resume_terminate_purge_over_http(http: httpx.Client) -> None:
    assert http.post("/v1.0/workflows/dapr/approval/start?instanceID=order-3").status_code == 202
    eventually(lambda: _status(http, "order-3") == "RUNNING")
    assert http.post("/v1.0/workflows/dapr/order-3/pause").status_code == 202
    assert _status(http, "order-3") == "SUSPENDED"  # daprd's pause returns once it applied
    assert http.post("/v1.0/workflows/dapr/order-3/resume").status_code == 202
    assert _status(http, "order-3") == "RUNNING"

    running = http.post("/v1.0/workflows/dapr/order-3/purge")
    assert "has not yet completed" in _error(running, 500, "ERR_PURGE_WORKFLOW")
    terminated = http.post("/v1.0/workflows/dapr/order-3/terminate")
    assert terminated.status_code == 202
    assert _status(http, "order-3") == "TERMINATED"  # terminate blocks until the instance is terminal

    assert http.post("/v1.0/workflows/dapr/order-3/purge").status_code == 202
    gone = http.get("/v1.0/workflows/dapr/order-3")
    assert _error(gone, 404, "ERR_INSTANCE_ID_NOT_FOUND") == (
        "unable to find workflow with the provided instance ID: order-3"
    )


def test_pause_resume_terminate_purge_over_grpc(stub: Any) -> None:
    def ask(call: Any, message: Any) -> Any:
        return call(message(instance_id="order-4", workflow_component="dapr"), timeout=30)

    start = workflow_pb2.StartWorkflowRequest(
        instance_id="order-4", workflow_component="dapr", workflow_name="approval"
    )
    stub.StartWorkflowBeta1(start, timeout=30)
    get = (stub.GetWorkflowBeta1, workflow_pb2.GetWorkflowRequest)
    eventually(lambda: ask(*get).runtime_status == "RUNNING")
    ask(stub.PauseWorkflowBeta1, workflow_pb2.PauseWorkflowRequest)
    assert ask(*get).runtime_status == "SUSPENDED"
    ask(stub.ResumeWorkflowBeta1, workflow_pb2.ResumeWorkflowRequest)
    assert ask(*get).runtime_status == "RUNNING"
    ask(stub.TerminateWorkflowBeta1, workflow_pb2.TerminateWorkflowRequest)
    assert ask(*get).runtime_status == "TERMINATED"
    ask(stub.PurgeWorkflowBeta1, workflow_pb2.PurgeWorkflowRequest)
    # daprd's gRPC API answers an unknown instance with its id and nothing else, not an error
    assert ask(*get) == workflow_pb2.GetWorkflowResponse(instance_id="order-4")
    missing = _rpc_error(
        stub.PurgeWorkflowBeta1,
        workflow_pb2.PurgeWorkflowRequest(instance_id="order-4", workflow_component="dapr"),
        grpc.StatusCode.NOT_FOUND,
    )
    assert missing == "unable to find workflow with the provided instance ID: order-4"


def test_a_failed_workflow_reports_its_failure_not_an_output(http: httpx.Client) -> None:
    assert http.post("/v1.0/workflows/dapr/doomed/start?instanceID=doomed-1").status_code == 202
    eventually(lambda: _status(http, "doomed-1") == "FAILED")
    props = http.get("/v1.0/workflows/dapr/doomed-1").json()["properties"]
    assert props["dapr.workflow.failure.error_type"] == "ValueError"
    assert "no such order" in props["dapr.workflow.failure.error_message"]
    assert "dapr.workflow.output" not in props


def test_http_errors_carry_daprds_codes(http: httpx.Client) -> None:
    # daprd (since 1.15) does not read the component name: any name reaches the one engine
    other = http.post("/v1.0/workflows/anyname/approval/start?instanceID=any-component")
    assert other.status_code == 202 and other.json() == {"instanceID": "any-component"}
    assert http.get("/v1.0/workflows/temporal/any-component").json()["workflowName"] == "approval"
    assert http.post("/v1.0/workflows/x/any-component/terminate").status_code == 202
    bad_id = http.post("/v1.0/workflows/dapr/approval/start?instanceID=a.b")
    assert "only alphanumeric" in _error(bad_id, 400, "ERR_INSTANCE_ID_INVALID")
    long_id = http.post(f"/v1.0/workflows/dapr/approval/start?instanceID={'x' * 65}")
    _error(long_id, 400, "ERR_INSTANCE_ID_TOO_LONG")
    _error(http.get("/v1.0/workflows/dapr/nobody"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    _error(http.post("/v1.0/workflows/dapr/nobody/terminate"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    _error(http.post("/v1.0/workflows/dapr/nobody/purge"), 404, "ERR_INSTANCE_ID_NOT_FOUND")
    _error(http.post("/v1.0/workflows/dapr/nobody/pause"), 500, "ERR_PAUSE_WORKFLOW")
    _error(http.post("/v1.0/workflows/dapr/nobody/raiseEvent/approve"), 500, "ERR_RAISE_EVENT_WORKFLOW")
    bad_app = http.post("/v1.0/workflows/dapr/nobody/terminate?appID=a.b")
    _error(bad_app, 400, "ERR_WORKFLOW_APP_ID_INVALID")


def test_grpc_errors_carry_daprds_statuses(http: httpx.Client, stub: Any) -> None:
    unnamed = workflow_pb2.StartWorkflowRequest(workflow_component="dapr")
    assert _rpc_error(stub.StartWorkflowBeta1, unnamed, grpc.StatusCode.INVALID_ARGUMENT) == (
        "workflow name is not configured"
    )
    no_component = workflow_pb2.StartWorkflowRequest(workflow_name="approval", instance_id="no-component")
    assert stub.StartWorkflowBeta1(no_component, timeout=30).instance_id == "no-component"
    no_id = workflow_pb2.GetWorkflowRequest(workflow_component="dapr")
    assert _rpc_error(stub.GetWorkflowBeta1, no_id, grpc.StatusCode.INVALID_ARGUMENT) == (
        "no instance ID was provided"
    )
    no_event = workflow_pb2.RaiseEventWorkflowRequest(instance_id="x", workflow_component="dapr")
    _rpc_error(stub.RaiseEventWorkflowBeta1, no_event, grpc.StatusCode.INVALID_ARGUMENT)
    unknown = workflow_pb2.TerminateWorkflowRequest(instance_id="nobody", workflow_component="dapr")
    _rpc_error(stub.TerminateWorkflowBeta1, unknown, grpc.StatusCode.NOT_FOUND)

    assert http.post("/v1.0/workflows/dapr/approval/start?instanceID=twice").status_code == 202
    again = workflow_pb2.StartWorkflowRequest(
        instance_id="twice", workflow_component="dapr", workflow_name="approval"
    )
    assert "already exists" in _rpc_error(stub.StartWorkflowBeta1, again, grpc.StatusCode.INTERNAL)
    late = workflow_pb2.StartWorkflowRequest(
        workflow_component="dapr", workflow_name="approval", options={"dapr.workflow.start_time": "tomorrow"}
    )
    assert "RFC3339" in _rpc_error(stub.StartWorkflowBeta1, late, grpc.StatusCode.INTERNAL)
    assert http.post("/v1.0/workflows/dapr/twice/terminate").status_code == 202


def test_the_api_token_guards_the_workflow_api(tmp_path: Path) -> None:
    with sidecar_thread(tmp_path, app_id="guarded", api_token="s3cret") as sidecar:
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/workflows/dapr"
        assert httpx.get(f"{base}/anyone").status_code == 401
        assert httpx.get(f"{base}/anyone", headers={"dapr-api-token": "s3cret"}).status_code == 404
        with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
            dapr = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
            request = workflow_pb2.GetWorkflowRequest(instance_id="anyone", workflow_component="dapr")
            _rpc_error(dapr.GetWorkflowBeta1, request, grpc.StatusCode.UNAUTHENTICATED)


def test_grpc_start_time_option_schedules_the_start(stub: Any, clock: ManualClock) -> None:
    later = datetime.fromtimestamp(clock.now() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = workflow_pb2.StartWorkflowRequest(
        instance_id="later-1",
        workflow_component="dapr",
        workflow_name="approval",
        options={"dapr.workflow.start_time": later},
    )
    stub.StartWorkflowBeta1(start, timeout=30)
    get = workflow_pb2.GetWorkflowRequest(instance_id="later-1", workflow_component="dapr")
    assert stub.GetWorkflowBeta1(get, timeout=30).runtime_status == "PENDING"
    stub.TerminateWorkflowBeta1(
        workflow_pb2.TerminateWorkflowRequest(instance_id="later-1", workflow_component="dapr"), timeout=30
    )
    assert stub.GetWorkflowBeta1(get, timeout=30).runtime_status == "TERMINATED"
