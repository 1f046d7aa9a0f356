"""`bindings.cron` in a real embedded sidecar (own thread, dev clock, real SQLite) against a real app served
on loopback: start-up validation, daprd's OPTIONS probe, one POST per due instant as the clock advances,
the headers daprd sends, no retry of a refused tick, the metadata API and the output-binding error."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sidecar import ManualClock
from sidecar.components import ComponentError, load_components
from sidecar.thread import SidecarThread
from tests.harness import ServedApp, wait_for
from tests.stack import sidecar_thread

COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: quarter
spec:
  type: bindings.cron
  version: v1
  metadata:
  - name: schedule
    value: "@every 15m"
  - name: direction
    value: input
  - name: route
    value: /ticks/quarter
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: fivemin
spec:
  type: bindings.cron
  version: v1
  metadata:
  - name: schedule
    value: "0 */5 * * * *"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: unsubscribed
spec:
  type: bindings.cron
  version: v1
  metadata:
  - name: schedule
    value: "@every 1m"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: refused
spec:
  type: bindings.cron
  version: v1
  metadata:
  - name: schedule
    value: "@every 10m"
  - name: direction
    value: "input, output"
"""


ROUTES = ("/ticks/quarter", "/fivemin", "/refused")  # what the app serves (anything else: 404)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    clock: float  # the sidecar's clock when the app got the call


@dataclass
class Recorder:
    clock: ManualClock
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == "POST" and c.path == path]

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            call = Call(
                request.method,
                request.url.path,
                dict(request.headers),
                await request.body(),
                self.clock.now(),
            )
            with self.lock:
                self.calls.append(call)
            if request.url.path == "/refused":
                return Response("not today", status_code=500)
            return Response(status_code=200 if request.url.path in ROUTES else 404)

        everything = ["GET", "POST", "PUT", "OPTIONS", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", record, methods=everything)])


@dataclass
class Running:
    sidecar: SidecarThread
    recorder: Recorder
    clock: ManualClock
    started: float

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.sidecar.http_port}", timeout=10)

    def due(self, name: str) -> float:
        job = self.sidecar.call(self.sidecar.sidecar.scheduler.get(f"binding||{name}"))
        assert job is not None, name
        return job.due

    def advance_to(self, instant: float, step: float) -> None:
        """Move the dev clock to `instant` in steps of at most `step` seconds, letting due jobs run."""
        while self.clock.now() < instant:
            self.clock.advance(min(step, instant - self.clock.now()))
            self.sidecar.call(self.sidecar.sidecar.scheduler.settled())


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("cron")
    (data / "components").mkdir()
    (data / "components" / "bindings.yaml").write_text(COMPONENTS)
    clock = ManualClock()
    recorder = Recorder(clock)
    app = ServedApp(recorder.app(), lifespan="off").start()
    started = clock.now()
    sidecar = sidecar_thread(
        data,
        app_id="cron-app",
        app_port=app.port,
        resources_paths=[data / "components"],
        app_token="app-secret",
        clock=clock,
    ).start()
    try:
        sidecar.wait_ready()
        yield Running(sidecar, recorder, clock, started)
    finally:
        sidecar.stop()
        app.stop()


def test_probe_decides_which_bindings_are_read(running: Running) -> None:
    options = [
        (c.path, c.headers.get("content-type")) for c in running.recorder.calls if c.method == "OPTIONS"
    ]
    # An explicit `direction: input` skips the probe; the others get OPTIONS on their route.
    assert sorted(options) == [("/fivemin", "application/json"), ("/unsubscribed", "application/json")]
    assert running.sidecar.sidecar.bindings.reading == {"quarter", "fivemin", "refused"}


def test_every_fires_once_per_due_instant_as_the_clock_advances(running: Running) -> None:
    first = running.due("quarter")
    assert running.started + 900 <= first <= running.started + 900 + 5  # armed from start-up, 15 min on
    before = len(running.recorder.posts("/ticks/quarter"))
    for tick in range(3):
        due = first + tick * 900
        running.advance_to(due - 1, step=60)
        assert len(running.recorder.posts("/ticks/quarter")) == before + tick  # not a moment early
        running.advance_to(due + 1, step=1)
        calls = wait_for(
            lambda n=before + tick + 1: (lambda c: c if len(c) == n else None)(
                running.recorder.posts("/ticks/quarter")
            )
        )
        assert due <= calls[-1].clock < due + 2
        # Re-armed from when the tick ran (robfig's @every), so a tick run late moves the grid as late.
        assert running.due("quarter") == pytest.approx(calls[-1].clock + 900, abs=1)


def test_tick_carries_daprd_headers_and_no_body(running: Running) -> None:
    running.advance_to(running.due("quarter") + 1, step=30)
    call = wait_for(lambda: (running.recorder.posts("/ticks/quarter") or [None])[-1])
    assert call.body == b""
    assert call.headers["content-type"] == "application/json"
    assert call.headers["dapr-api-token"] == "app-secret"
    assert call.headers["timezone"] == "Local"
    read = dt.datetime.strptime(call.headers["readtimeutc"][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    assert call.headers["readtimeutc"].endswith(" +0000 UTC")
    assert abs(read.timestamp() - call.clock) < 2  # the sidecar's (dev) clock, not wall time


def test_crontab_fires_on_its_wall_clock_instants(running: Running) -> None:
    due = running.due("fivemin")
    assert int(due) % 300 == 0 and due > running.clock.now()
    before = len(running.recorder.posts("/fivemin"))
    running.advance_to(due + 601, step=20)  # crosses three activations
    calls = wait_for(
        lambda: (lambda c: c if len(c) == before + 3 else None)(running.recorder.posts("/fivemin"))
    )
    fired = [c.clock for c in calls[before:]]
    assert [round(f - due) // 300 for f in fired] == [0, 1, 2]


def test_refused_tick_is_not_retried_and_the_schedule_goes_on(running: Running) -> None:
    due = running.due("refused")
    running.advance_to(due + 5, step=10)  # the scheduler's retry interval would have re-sent it by now
    time.sleep(0.3)
    (refused,) = [c for c in running.recorder.posts("/refused") if c.clock >= due]
    # robfig/cron sets the next activation from the instant the tick ran
    assert running.due("refused") == pytest.approx(refused.clock + 600, abs=1)


def test_missed_ticks_are_not_caught_up(running: Running) -> None:
    due = running.due("quarter")
    before = len(running.recorder.posts("/ticks/quarter"))
    running.clock.advance(due - running.clock.now() + 3 * 900 + 10)  # one jump over four instants
    running.sidecar.call(running.sidecar.sidecar.scheduler.settled())
    wait_for(lambda: len(running.recorder.posts("/ticks/quarter")) == before + 1 or None)
    time.sleep(0.3)
    assert len(running.recorder.posts("/ticks/quarter")) == before + 1  # one late tick, as robfig/cron
    assert running.due("quarter") > running.clock.now()


def test_metadata_lists_the_bindings_as_daprd(running: Running) -> None:
    with running.http() as http:
        components = http.get("/v1.0/metadata").json()["components"]
    bindings = [c for c in components if c["type"] == "bindings.cron"]
    assert bindings == [
        {"name": n, "type": "bindings.cron", "version": "v1", "capabilities": ["INPUT_BINDING"]}
        for n in ("quarter", "fivemin", "unsubscribed", "refused")
    ]


def test_invoking_an_input_only_cron_answers_daprd_error(running: Running) -> None:
    with running.http() as http:
        r = http.post("/v1.0/bindings/quarter", json={"operation": "create", "data": {}})
        assert r.status_code == 500
        assert r.json() == {
            "errorCode": "ERR_INVOKE_OUTPUT_BINDING",
            "message": "error invoking output binding quarter: couldn't find output binding quarter",
        }
        r = http.put("/v1.0/bindings/quarter", json={"data": 1})
        assert r.status_code == 500
        assert r.json()["message"].endswith("operation field is missing from request")
        r = http.post("/v1.0/bindings/quarter", content=b"{nope")
        assert r.status_code == 400 and r.json()["errorCode"] == "ERR_MALFORMED_REQUEST"


BAD = [
    ("@every 1d", "invalid schedule format '@every 1d': failed to parse duration @every 1d"),
    ("0 0 0 * * 7", "invalid schedule format '0 0 0 * * 7': end of range (7) above maximum (6): 7"),
    ("", "schedule not set"),
]


@pytest.mark.parametrize(("schedule", "message"), BAD)
def test_invalid_schedule_fails_start_up_naming_component_and_file(
    tmp_path: Path, schedule: str, message: str
) -> None:
    (tmp_path / "cron.yaml").write_text(COMPONENTS.split("---")[0].replace('"@every 15m"', f'"{schedule}"'))
    with pytest.raises(ComponentError) as caught:
        load_components([tmp_path], app_id="a", data_dir=tmp_path)
    text = str(caught.value)
    assert str(tmp_path / "cron.yaml") in text and "'quarter'" in text and message in text


def test_output_only_direction_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cron.yaml").write_text(COMPONENTS.split("---")[0].replace("value: input", "value: output"))
    with pytest.raises(ComponentError, match="bindings.cron is an input binding only"):
        load_components([tmp_path], app_id="a", data_dir=tmp_path)


def test_sidecar_start_fails_on_an_invalid_schedule(tmp_path: Path) -> None:
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "cron.yaml").write_text(COMPONENTS.replace('"@every 10m"', '"@every soon"'))
    sidecar = sidecar_thread(tmp_path, resources_paths=[tmp_path / "components"], clock=ManualClock())
    with pytest.raises(ComponentError, match=r"'refused'.*invalid schedule format '@every soon'"):
        sidecar.start()
