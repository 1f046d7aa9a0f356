"""The Jobs API of a real embedded sidecar (own thread, dev clock, real SQLite) against a real app on
loopback: the SDK's schedule/get/delete, raw HTTP with daprd's bodies and errors, triggers at their instants
as the dev clock advances (`/v1.0-dev/clock/advance`), repeats/ttl, the failure policy, and restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._jobs import ConstantFailurePolicy, DropFailurePolicy, Job
from dapr.proto.runtime.v1 import dapr_pb2_grpc, jobs_pb2
from google.protobuf import any_pb2, wrappers_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sidecar import ManualClock
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, use_sidecar
from tests.stack import sidecar_thread

pytestmark = pytest.mark.filterwarnings("ignore:.*_alpha1 is deprecated:DeprecationWarning")


@dataclass
class Trigger:
    name: str
    body: bytes
    content_type: str
    token: str | None
    clock: float


@dataclass
class JobApp:
    clock: ManualClock
    triggers: list[Trigger] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # job name -> status to answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, name: str) -> list[Trigger]:
        with self.lock:
            return [t for t in self.triggers if t.name == name]

    def app(self) -> Starlette:
        async def job(request: Request) -> Response:
            name = request.path_params["name"]
            with self.lock:
                self.triggers.append(
                    Trigger(
                        name,
                        await request.body(),
                        request.headers.get("content-type", ""),
                        request.headers.get("dapr-api-token"),
                        self.clock.now(),
                    )
                )
            return Response(status_code=self.fail.get(name, 200))

        return Starlette(routes=[Route("/job/{name}", job, methods=["POST"])])


@dataclass
class Running:
    sidecar: SidecarThread
    app: JobApp
    clock: ManualClock

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.sidecar.http_port}", timeout=30)

    def advance(self, seconds: float) -> None:
        with self.http() as http:
            r = http.post("/v1.0-dev/clock/advance", json={"seconds": seconds})
            assert r.status_code == 200, r.text

    def client(self) -> DaprClient:
        use_sidecar(self.sidecar.http_port, self.sidecar.grpc_port)
        return DaprClient(f"127.0.0.1:{self.sidecar.grpc_port}")


def _start(data: Path, clock: ManualClock, app: ServedApp) -> SidecarThread:
    sidecar = sidecar_thread(
        data, app_id="jobs-app", app_port=app.port, dev_clock=True, app_token="app-secret", clock=clock
    ).start()
    sidecar.wait_ready()
    return sidecar


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    clock = ManualClock()
    recorder = JobApp(clock)
    app = ServedApp(recorder.app(), lifespan="off").start()
    sidecar = _start(tmp_path, clock, app)
    try:
        yield Running(sidecar, recorder, clock)
    finally:
        sidecar.stop()
        app.stop()


def test_sdk_schedules_gets_and_deletes_a_job(running: Running) -> None:
    data = any_pb2.Any()
    data.Pack(wrappers_pb2.StringValue(value="hello"))
    with running.client() as client:
        client.schedule_job_alpha1(Job(name="report", schedule="@every 1h", repeats=3, data=data))
        got = client.get_job_alpha1("report")
        assert (got.name, got.schedule, got.repeats, got.due_time, got.ttl) == (
            "report",
            "@every 1h",
            3,
            None,
            None,
        )
        assert got.data is not None and got.data.type_url.endswith("StringValue")
        with pytest.raises(DaprGrpcError) as caught:
            client.schedule_job_alpha1(Job(name="report", schedule="@daily"))
        assert caught.value.code().name == "ALREADY_EXISTS"
        assert caught.value.error_code() == "DAPR_SCHEDULER_SCHEDULE_JOB"
        client.schedule_job_alpha1(Job(name="report", schedule="@daily"), overwrite=True)
        assert client.get_job_alpha1("report").schedule == "@daily"
        client.delete_job_alpha1("report")
        with pytest.raises(DaprGrpcError) as caught:
            client.get_job_alpha1("report")
        assert caught.value.error_code() == "DAPR_SCHEDULER_GET_JOB"
        client.delete_job_alpha1("report")  # deleting an unknown job succeeds, as in daprd


def test_delete_jobs_by_prefix_deletes_only_the_matching_ones(running: Running) -> None:
    with running.client() as client:
        for name in ("report-daily", "report-weekly", "cleanup"):
            client.schedule_job_alpha1(Job(name=name, schedule="@every 1h"))
        with grpc.insecure_channel(f"127.0.0.1:{running.sidecar.grpc_port}") as channel:
            stub = dapr_pb2_grpc.DaprStub(channel)
            stub.DeleteJobsByPrefix(jobs_pb2.DeleteJobsByPrefixRequest(name_prefix="report-"))
            with pytest.raises(DaprGrpcError):
                client.get_job_alpha1("report-weekly")
            assert client.get_job_alpha1("cleanup").name == "cleanup"
            stub.DeleteJobsByPrefixAlpha1(jobs_pb2.DeleteJobsByPrefixRequestAlpha1(name_prefix="nothing"))
            assert client.get_job_alpha1("cleanup").name == "cleanup"
            stub.DeleteJobsByPrefixAlpha1(jobs_pb2.DeleteJobsByPrefixRequestAlpha1(name_prefix=""))  # all
        with pytest.raises(DaprGrpcError):
            client.get_job_alpha1("cleanup")
    running.advance(7200)
    assert running.app.triggers == []  # nothing left to trigger


def test_triggers_follow_the_dev_clock_with_daprd_body(running: Running) -> None:
    with running.http() as http:
        r = http.post(
            "/v1.0-alpha1/jobs/tick", json={"schedule": "@every 10s", "repeats": 3, "data": {"n": 1}}
        )
        assert r.status_code == 204 and r.content == b""
        start = running.clock.now()
        running.advance(9)
        assert running.app.of("tick") == []  # never early
        running.advance(26)
        ticks = running.app.of("tick")
        assert [round(t.clock - start) for t in ticks] == [10, 20, 30]
        assert ticks[0].body == b'{"n":1}'
        assert ticks[0].content_type == "application/json" and ticks[0].token == "app-secret"
        assert http.get("/v1.0-alpha1/jobs/tick").status_code == 500  # repeats used up: gone


def test_due_time_ttl_and_get_body(running: Running) -> None:
    with running.http() as http:
        body = {"schedule": "@every 1m", "dueTime": "30s", "ttl": "150s", "data": "hi"}
        assert http.post("/v1.0/jobs/window", json=body).status_code == 204
        got = http.get("/v1.0/jobs/window")
        assert got.status_code == 200
        assert got.json() == {
            "name": "window",
            "schedule": "@every 1m",
            "dueTime": "30s",
            "ttl": "150s",
            "data": {"@type": "type.googleapis.com/google.protobuf.Value", "value": "hi"},
        }
        start = running.clock.now()
        running.advance(600)
        fired = [round(t.clock - start) for t in running.app.of("window")]
        assert fired == [30, 90, 150]  # due at 30 s, then every minute until the ttl (180 s > 150 s)
        assert running.app.of("window")[0].body == b'"hi"'


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({}, 400, "DAPR_SCHEDULER_SCHEDULE_EMPTY", "Schedule is empty"),
        (
            {"name": "x", "schedule": "@daily"},
            400,
            "DAPR_SCHEDULER_JOB_NAME",
            "Set the job name in the url only",
        ),
        (
            {"schedule": "* * * * *"},
            500,
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            "failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
            "expected exactly 6 fields, found 5: [* * * * *]",
        ),
        (
            {"dueTime": "soon"},
            500,
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            "failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
            "due time format not recognized",
        ),
        (
            {"dueTime": "10s", "repeats": 2},
            500,
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            "failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
            "job must have a schedule to repeat",
        ),
        (
            {"schedule": "@daily", "dueTime": "1h", "ttl": "2023-01-01T00:00:00Z"},
            500,
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            "failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
            "ttl must be greater than due time",
        ),
        ({"schedule": "@daily", "repeats": -1}, 400, "ERR_MALFORMED_REQUEST", None),
    ],
)
def test_validation_errors_are_daprd(
    running: Running, body: dict[str, object], status: int, code: str, message: str | None
) -> None:
    with running.http() as http:
        r = http.post("/v1.0-alpha1/jobs/bad", json=body)
    assert r.status_code == status, r.text
    assert r.json()["errorCode"] == code
    if message is not None:
        assert r.json()["message"] == message
        assert r.json()["details"][0]["reason"] == code
        assert r.json()["details"][0]["domain"] == "dapr.io"


def test_invalid_name_is_refused(running: Running) -> None:
    with running.client() as client, pytest.raises(DaprGrpcError) as caught:
        client.schedule_job_alpha1(Job(name="bad/name", schedule="@daily"))
    assert "job name is invalid" in str(caught.value.details())


def test_failure_policy_retries_then_moves_on(running: Running) -> None:
    running.app.fail["flaky"] = 500
    running.app.fail["dropped"] = 503
    with running.client() as client:
        client.schedule_job_alpha1(
            Job(
                name="flaky",
                due_time="10s",
                failure_policy=ConstantFailurePolicy(max_retries=2, interval_seconds=5),
            )
        )
        client.schedule_job_alpha1(Job(name="dropped", due_time="10s", failure_policy=DropFailurePolicy()))
        client.schedule_job_alpha1(Job(name="default", due_time="10s"))
    running.app.fail["default"] = 500
    start = running.clock.now()
    running.advance(60)
    assert [round(t.clock - start) for t in running.app.of("flaky")] == [10, 15, 20]
    assert [round(t.clock - start) for t in running.app.of("dropped")] == [10]
    assert [round(t.clock - start) for t in running.app.of("default")] == [10, 11, 12, 13]  # 1 s, 3 retries
    with running.http() as http:
        assert http.get("/v1.0-alpha1/jobs/flaky").status_code == 500  # one-shot, given up: gone


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    recorder = JobApp(clock)
    app = ServedApp(recorder.app(), lifespan="off").start()
    try:
        sidecar = _start(tmp_path, clock, app)
        with httpx.Client(base_url=f"http://127.0.0.1:{sidecar.http_port}") as http:
            assert http.post("/v1.0-alpha1/jobs/nightly", json={"schedule": "@every 1h"}).status_code == 204
        start = clock.now()
        sidecar.stop()
        sidecar = _start(tmp_path, clock, app)
        running = Running(sidecar, recorder, clock)
        with running.client() as client:
            assert client.get_job_alpha1("nightly").schedule == "@every 1h"
        running.advance(3 * 3600 + 1)
        assert [round(t.clock - start) for t in recorder.of("nightly")] == [3600, 7200, 10800]
        sidecar.stop()
    finally:
        app.stop()
