"""An `actors` target as daprd splits it: retries and a circuit breaker (scoped by actor id) around the call
in the calling sidecar, a timeout around the app call once the actor's turn is taken. The app is a raw
actor host that fails on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.proto.runtime.v1 import actors_pb2, dapr_pb2_grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sidecar.components import ComponentError
from sidecar.resiliency import load_resiliency
from sidecar.thread import SidecarThread
from tests.sidecar.invoke import invoke_app
from tests.sidecar.invoke.conftest import resiliency
from tests.stack import running_sidecar

RESILIENCY = resiliency(
    "actor-resiliency",
    """\
    actors:
      Guarded:
        timeout: quick
        retry: twice
        circuitBreaker: three-strikes
        circuitBreakerScope: id
""",
)

ACTOR_ERROR = "ERR_ACTOR_INVOKE_METHOD"
CALLS: dict[str, int] = {}


async def method(request: Request) -> Response:
    """`Fail` answers 500 while the actor's count of calls is at most the number in the body; `Slow` takes
    a second; any other method is unknown (404)."""
    actor_id, name = request.path_params["id"], request.path_params["method"]
    key = f"{actor_id}/{name}"
    CALLS[key] = count = CALLS.get(key, 0) + 1
    if name == "Slow":
        await asyncio.sleep(1)
        return JSONResponse("late")
    if name != "Fail":
        return Response(b"no such method", status_code=404)
    if count <= int(await request.body() or b"0"):
        return Response(f"failing ({count})".encode(), status_code=500)
    return JSONResponse(count)


def _app() -> Starlette:
    return Starlette(
        routes=[
            Route("/dapr/config", lambda _: JSONResponse({"entities": ["Guarded"]}), methods=["GET"]),
            Route("/healthz", lambda _: Response(), methods=["GET"]),
            Route("/actors/Guarded/{id}/method/{method}", method, methods=["PUT"]),
            Route("/actors/Guarded/{id}", lambda _: Response(), methods=["DELETE"]),
        ]
    )


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    tmp: Path = tmp_path_factory.mktemp("actor-resiliency")
    (tmp / "resources").mkdir()
    (tmp / "resources" / "resiliency.yaml").write_text(RESILIENCY)
    with running_sidecar(
        tmp / "data", lambda _: _app(), app_id="guarded-actors", resources_paths=[tmp / "resources"]
    ) as (sidecar, _):
        yield sidecar


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarThread]:
    """A sidecar whose app hosts no actors, beside the actors' sidecar on one host registry; both load the
    same Resiliency resource."""
    tmp: Path = tmp_path_factory.mktemp("actor-resiliency-across")
    (tmp / "resources").mkdir()
    (tmp / "resources" / "resiliency.yaml").write_text(RESILIENCY)
    common = {"resources_paths": [tmp / "resources"], "registry_dir": tmp / "registry"}
    with (
        running_sidecar(tmp / "host", lambda _: _app(), app_id="actor-host", **common),
        running_sidecar(tmp / "caller", lambda _: invoke_app.build(), app_id="caller", **common) as pair,
    ):
        yield pair[0]


def _call(sidecar: SidecarThread, actor_id: str, name: str, body: bytes = b"") -> httpx.Response:
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/actors/Guarded/{actor_id}/method/{name}"
    return httpx.put(url, content=body, timeout=30)


def _error(reply: httpx.Response) -> tuple[int, str, str]:
    body = reply.json()
    return reply.status_code, body["errorCode"], body["message"]


def test_failures_are_retried(sidecar: SidecarThread) -> None:
    reply = _call(sidecar, "r", "Fail", b"2")
    assert (reply.status_code, reply.json()) == (200, 3)  # two 500s retried


def test_an_unknown_method_is_not_retried(sidecar: SidecarThread) -> None:
    reply = _call(sidecar, "n", "Nope")
    assert _error(reply) == (
        500,
        "ERR_ACTOR_INVOKE_METHOD",
        "error invoke actor method: actor method not found: Nope",
    )
    assert CALLS["n/Nope"] == 1


def test_the_breaker_of_one_actor_id(sidecar: SidecarThread) -> None:
    assert _error(_call(sidecar, "down", "Fail", b"99")) == (
        500,
        "ERR_ACTOR_INVOKE_METHOD",
        "error invoke actor method: error from actor service: (500) failing (3)",
    )
    assert _error(_call(sidecar, "down", "Fail", b"0")) == (
        500,
        "ERR_ACTOR_INVOKE_METHOD",
        "error invoke actor method: circuit breaker is open",
    )
    assert CALLS["down/Fail"] == 3  # refused without calling the app
    assert _call(sidecar, "up", "Fail", b"0").json() == 1  # scope `id`: another actor is not affected


def test_timeout_after_the_turn_is_taken(sidecar: SidecarThread) -> None:
    reply = _call(sidecar, "slow", "Slow")
    assert _error(reply) == (
        500,
        "ERR_ACTOR_INVOKE_METHOD",
        "error invoke actor method: context deadline exceeded",
    )
    assert CALLS["slow/Slow"] == 3  # each attempt timed out and was retried


def test_loading_actor_targets(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RESILIENCY.replace("circuitBreakerScope: id", "circuitBreakerScope: type")
    )
    loaded = load_resiliency([tmp_path], "any")
    one, two = loaded.actor("Guarded", "1"), loaded.actor("Guarded", "2")
    assert one is not None and two is not None and one.breaker is two.breaker  # one breaker per type
    assert one.timeout is None and loaded.actor_timeout("Guarded") == 0.3  # the timeout is post-lock
    assert loaded.actor("Other", "1") is None and loaded.actor_timeout("Other") is None
    (tmp_path / "r.yaml").write_text(RESILIENCY.replace("        circuitBreakerScope: id\n", ""))
    with pytest.raises(ComponentError, match="actor Guarded: actor circuit breakers must include scope"):
        load_resiliency([tmp_path], "any")


def test_a_forwarded_call_gets_the_policy_once_in_the_calling_sidecar(caller: SidecarThread) -> None:
    reply = _call(caller, "far", "Fail", b"2")
    assert (reply.status_code, reply.json()) == (200, 3)  # retried by the caller, not again by the host
    assert _error(_call(caller, "far-down", "Fail", b"99"))[2].endswith("(500) failing (3)")
    assert (
        _error(_call(caller, "far-down", "Fail", b"0"))[2]
        == "error invoke actor method: circuit breaker is open"
    )
    assert CALLS["far-down/Fail"] == 3


def _grpc_invoke(sidecar: SidecarThread, actor_id: str, name: str, data: bytes) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
        request = actors_pb2.InvokeActorRequest(
            actor_type="Guarded", actor_id=actor_id, method=name, data=data
        )
        reply = dapr_pb2_grpc.DaprStub(channel).InvokeActor(request, timeout=30)
    return bytes(reply.data)


@pytest.mark.parametrize("where", ["here", "across"])
def test_grpc_invoke_actor_gets_the_same_policy(
    sidecar: SidecarThread, caller: SidecarThread, where: str
) -> None:
    via = sidecar if where == "here" else caller
    assert _grpc_invoke(via, f"g-{where}", "Fail", b"2") == b"3"  # two failures retried
    with pytest.raises(grpc.RpcError):
        _grpc_invoke(via, f"g-down-{where}", "Fail", b"99")
    with pytest.raises(grpc.RpcError) as refused:
        _grpc_invoke(via, f"g-down-{where}", "Fail", b"0")
    assert refused.value.details() == "error invoke actor method: circuit breaker is open"
    assert CALLS[f"g-down-{where}/Fail"] == 3
