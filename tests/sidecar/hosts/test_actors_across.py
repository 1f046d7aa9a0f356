"""Actor placement across sidecars on one host: `hoster`'s app hosts `CounterActor`; `caller`'s app hosts no
actors, and its sidecar forwards actor calls to the sidecar that registered the type (daprd's placement
table), where the actor's state, reminders and timers live."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dapr.proto.runtime.v1 import actors_pb2, dapr_pb2_grpc
from google.protobuf import wrappers_pb2

from sidecar import ManualClock
from sidecar.hosts import HostRegistry
from sidecar.thread import SidecarThread
from tests.harness import use_sidecar, wait_for
from tests.sidecar.actors.actor_app import RECORD, build_app
from tests.sidecar.invoke import invoke_app
from tests.stack import running_sidecar


@dataclass
class Pair:
    hoster: SidecarThread
    caller: SidecarThread
    registry: Path

    def api(self, sidecar: SidecarThread) -> str:
        return f"http://127.0.0.1:{sidecar.http_port}/v1.0"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("actors-across")
    registry = tmp / "registry"
    clock = ManualClock()

    def actor_app(sidecar: SidecarThread) -> Any:
        use_sidecar(sidecar.http_port, sidecar.grpc_port)
        return build_app()

    common: dict[str, Any] = {"clock": clock, "registry_dir": registry, "dev_clock": True}
    with (
        running_sidecar(tmp / "hoster", actor_app, app_id="hoster", **common) as (hoster, _),
        running_sidecar(tmp / "caller", lambda _: invoke_app.build(), app_id="caller", **common) as (
            caller,
            _,
        ),
    ):
        yield Pair(hoster, caller, registry)


@pytest.fixture(autouse=True)
def _sdk_at_the_hoster(pair: Pair) -> None:
    """The actor app (in this process) reads and saves its state through its own sidecar."""
    use_sidecar(pair.hoster.http_port, pair.hoster.grpc_port)


def test_actor_methods_through_the_other_sidecar(pair: Pair) -> None:
    actor = f"{pair.api(pair.caller)}/actors/CounterActor/via-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=10) as c:
        for expected in (1, 2):  # the second with a chunked body: forwarded framed anew
            body = b"0" if expected == 1 else iter([b"0"])
            reply = c.put(f"{actor}/method/Increment", content=body)
            assert reply.status_code == 200, reply.text
            assert reply.json() == expected
        # The state is the hoster's: read directly there, the count is the same.
        direct = actor.replace(pair.api(pair.caller), pair.api(pair.hoster))
        assert c.put(f"{direct}/method/GetCount").json() == 2
        failed = c.put(f"{actor}/method/Fail", json="on purpose")
    assert failed.status_code == 500
    assert "on purpose" in failed.text  # the hoster's answer comes back as it gave it


def test_a_type_nobody_hosts_is_not_found(pair: Pair) -> None:
    with httpx.Client(timeout=30) as c:
        reply = c.put(f"{pair.api(pair.caller)}/actors/NoSuchActor/x/method/Go")
    assert reply.status_code == 500
    assert reply.json() == {
        "errorCode": "ERR_ACTOR_INVOKE_METHOD",
        "message": "error invoke actor method: did not find address for actor NoSuchActor",
    }


def test_reminders_set_through_the_other_sidecar_fire_at_the_hoster(pair: Pair) -> None:
    actor_id = f"rem-{uuid.uuid4().hex[:8]}"
    path = f"/actors/CounterActor/{actor_id}/reminders/ping"
    with httpx.Client(timeout=10) as c:
        put = c.put(pair.api(pair.caller) + path, json={"dueTime": "PT30S", "data": "cGluZw=="})
        assert put.status_code == 204, put.text
        # Stored at the hoster (read there directly), and read back through the caller the same.
        at_hoster = c.get(pair.api(pair.hoster) + path)
        assert at_hoster.status_code == 200
        assert c.get(pair.api(pair.caller) + path).json() == at_hoster.json()
        advanced = c.post(
            f"http://127.0.0.1:{pair.hoster.http_port}/v1.0-dev/clock/advance", json={"seconds": 31}
        )
        advanced.raise_for_status()
    fires = wait_for(lambda: RECORD.reminder_fires(actor_id, "ping"))
    assert len(fires) == 1


_PROXY_SCRIPT = """
import asyncio, sys
from dapr.actor import ActorId, ActorProxy
from tests.sidecar.actors.actor_app import CounterInterface

async def main():
    proxy = ActorProxy.create("CounterActor", ActorId(sys.argv[1]), CounterInterface)
    await proxy.SetText("from the other app")
    print(await proxy.GetText())

asyncio.run(main())
"""


def test_the_sdks_actor_proxy_in_another_app(pair: Pair) -> None:
    """Another app's process, its SDK pointed at its own sidecar (`caller`), as `dapr run` sets it up."""
    actor_id = f"sdk-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DAPR_HTTP_PORT": str(pair.caller.http_port),
        "DAPR_GRPC_PORT": str(pair.caller.grpc_port),
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROXY_SCRIPT, actor_id], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "from the other app"
    with httpx.Client(timeout=10) as c:
        direct = c.put(f"{pair.api(pair.hoster)}/actors/CounterActor/{actor_id}/method/GetText")
    assert direct.json() == "from the other app"


def test_a_second_host_of_a_type_is_refused(pair: Pair) -> None:
    """One host per actor type (each sidecar keeps its actors' state in its own store): the first live
    sidecar that registered a type keeps it, a later one is refused and its calls go to the first."""
    late = HostRegistry(pair.registry)
    try:
        late.register("late", "default", "127.0.0.1", 1, 2)
        assert late.claim_actor_types(["CounterActor", "LateActor"]) == ["CounterActor"]
        hoster = late.find_actor_host("CounterActor")
        assert hoster is not None and hoster.app_id == "hoster"
    finally:
        late.unregister()


def test_actor_rpcs_through_the_other_sidecar_over_grpc(pair: Pair) -> None:
    """The gRPC actor API routes like the HTTP one: methods, reminders and timers of a type another app
    hosts run at that app's sidecar; reminder listing is for hosted types only, as in daprd."""
    actor_id = f"grpc-{uuid.uuid4().hex[:8]}"
    ids = {"actor_type": "CounterActor", "actor_id": actor_id}
    with grpc.insecure_channel(f"127.0.0.1:{pair.caller.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        assert (
            stub.InvokeActor(actors_pb2.InvokeActorRequest(method="Increment", data=b"0", **ids)).data == b"1"
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.InvokeActor(actors_pb2.InvokeActorRequest(method="Fail", data=b'"on purpose"', **ids))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "on purpose" in (err.value.details() or "")

        stub.RegisterActorReminder(
            actors_pb2.RegisterActorReminderRequest(name="g", due_time="PT30S", data=b"ping", **ids)
        )
        got = stub.GetActorReminder(actors_pb2.GetActorReminderRequest(name="g", **ids))
        data = wrappers_pb2.BytesValue()
        assert got.due_time == "PT30S" and got.data.Unpack(data) and data.value == b'"cGluZw=="'
        with pytest.raises(grpc.RpcError) as err:
            stub.ListActorReminders(actors_pb2.ListActorRemindersRequest(actor_type="CounterActor"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub.UnregisterActorReminder(actors_pb2.UnregisterActorReminderRequest(name="g", **ids))
        with pytest.raises(grpc.RpcError) as err:
            stub.GetActorReminder(actors_pb2.GetActorReminderRequest(name="g", **ids))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with httpx.Client(timeout=10) as c:  # the actor and its reminders live at the hoster
        at_hoster = f"{pair.api(pair.hoster)}/actors/CounterActor/{actor_id}"
        assert c.put(f"{at_hoster}/method/GetCount").json() == 1
        assert c.get(f"{at_hoster}/reminders/g").json() == {}
