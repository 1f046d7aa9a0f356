"""The actor RPCs of `dapr.proto.runtime.v1.Dapr` (what the Go and Java SDKs call) through the SDK's generated
stub over real gRPC, against the actor app under the embedded sidecar: the same actors, turns, state and
reminders the HTTP API reaches, with daprd's field mapping, status codes and error details."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import actors_pb2, dapr_pb2_grpc
from google.protobuf import any_pb2, wrappers_pb2
from google.rpc import error_details_pb2, status_pb2

from tests.harness import wait_for
from tests.sidecar.actors.actor_app import RECORD
from tests.sidecar.actors.conftest import Stack
from tests.stack.sidecars import sidecar_thread

_COUNTER = "CounterActor"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def stub(stack: Stack) -> Iterator[dapr_pb2_grpc.DaprStub]:
    with grpc.insecure_channel(f"127.0.0.1:{stack.sidecar.grpc_port}") as channel:
        yield dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]


def _advance(stack: Stack, seconds: float) -> None:
    reply = httpx.post(
        f"http://127.0.0.1:{stack.sidecar.http_port}/v1.0-dev/clock/advance", json={"seconds": seconds}
    )
    reply.raise_for_status()


def _refused(call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request)  # type: ignore[operator]
    return err.value


def _details(err: grpc.RpcError) -> list[object]:
    """The `google.rpc` details daprd puts in the status trailer (none for its plain API errors)."""
    for key, value in err.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out: list[object] = []
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                out.append(info)
            return out
    return []


def _invoke(stub: dapr_pb2_grpc.DaprStub, actor_id: str, method: str, data: bytes = b"") -> bytes:
    request = actors_pb2.InvokeActorRequest(actor_type=_COUNTER, actor_id=actor_id, method=method, data=data)
    return bytes(stub.InvokeActor(request).data)


# -- methods ----------------------------------------------------------------------------------------


def test_invoke_actor_calls_the_method_in_the_app(stub: dapr_pb2_grpc.DaprStub) -> None:
    actor_id = _id("inv")
    assert _invoke(stub, actor_id, "Increment", b"0") == b"1"
    assert _invoke(stub, actor_id, "Increment", b"0") == b"2"
    assert _invoke(stub, actor_id, "SetText", b'"hello"') == b"null"
    assert _invoke(stub, actor_id, "GetText") == b'"hello"'


def test_a_failing_method_is_internal_with_the_apps_answer(stub: dapr_pb2_grpc.DaprStub) -> None:
    err = _refused(
        stub.InvokeActor,
        actors_pb2.InvokeActorRequest(actor_type=_COUNTER, actor_id=_id("f"), method="Fail", data=b'"boom"'),
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    assert (err.details() or "").startswith("error invoke actor method: error from actor service: (500)")
    assert "boom" in (err.details() or "")
    assert _details(err) == []  # daprd's messages.APIError carries no details


def test_invalid_actor_id_and_method_are_invalid_argument(stub: dapr_pb2_grpc.DaprStub) -> None:
    err = _refused(
        stub.InvokeActor, actors_pb2.InvokeActorRequest(actor_type=_COUNTER, actor_id="a/b", method="GetText")
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == 'invalid actorId: name contains forbidden character: "a/b"'
    err = _refused(
        stub.InvokeActor,
        actors_pb2.InvokeActorRequest(actor_type=_COUNTER, actor_id="x", method="GetText?a=1"),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == 'invalid actor method: method contains forbidden character: "GetText?a=1"'


# -- state ------------------------------------------------------------------------------------------


def _upsert(key: str, value: bytes, **metadata: str) -> actors_pb2.TransactionalActorStateOperation:
    return actors_pb2.TransactionalActorStateOperation(
        operationType="upsert", key=key, value=any_pb2.Any(value=value), metadata=metadata
    )


def _state(stub: dapr_pb2_grpc.DaprStub, actor_id: str, key: str) -> bytes:
    request = actors_pb2.GetActorStateRequest(actor_type=_COUNTER, actor_id=actor_id, key=key)
    return bytes(stub.GetActorState(request).data)


def test_state_transaction_is_what_the_actor_reads(stub: dapr_pb2_grpc.DaprStub) -> None:
    actor_id = _id("st")
    assert _invoke(stub, actor_id, "GetCount") == b"0"  # active now; its "text" not read (nor cached) yet
    stub.ExecuteActorStateTransaction(
        actors_pb2.ExecuteActorStateTransactionRequest(
            actor_type=_COUNTER,
            actor_id=actor_id,
            operations=[_upsert("text", b'"from grpc"'), _upsert("raw", b"\x00\x01 bytes")],
        )
    )
    assert _state(stub, actor_id, "raw") == b"\x00\x01 bytes"  # a gRPC value is stored as the bytes it is
    assert _invoke(stub, actor_id, "GetText") == b'"from grpc"'
    stub.ExecuteActorStateTransaction(
        actors_pb2.ExecuteActorStateTransactionRequest(
            actor_type=_COUNTER,
            actor_id=actor_id,
            operations=[actors_pb2.TransactionalActorStateOperation(operationType="delete", key="raw")],
        )
    )
    assert _state(stub, actor_id, "raw") == b""
    assert _state(stub, actor_id, "never-written") == b""


def test_state_transaction_refusals(stub: dapr_pb2_grpc.DaprStub) -> None:
    inactive = actors_pb2.ExecuteActorStateTransactionRequest(
        actor_type=_COUNTER, actor_id=_id("idle"), operations=[_upsert("k", b"1")]
    )
    err = _refused(stub.ExecuteActorStateTransaction, inactive)
    assert err.code() == grpc.StatusCode.INTERNAL
    assert (err.details() or "").startswith("actor instance is missing")

    actor_id = _id("st")
    _invoke(stub, actor_id, "GetCount")
    unknown = actors_pb2.ExecuteActorStateTransactionRequest(
        actor_type=_COUNTER,
        actor_id=actor_id,
        operations=[actors_pb2.TransactionalActorStateOperation(operationType="merge", key="k")],
    )
    err = _refused(stub.ExecuteActorStateTransaction, unknown)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED  # daprd's apierrors.Basic for this one
    assert err.details() == "operation type merge not supported"
    assert [(d.reason, d.domain) for d in _details(err)] == [  # type: ignore[attr-defined]
        ("ERR_NOT_SUPPORTED_STATE_OPERATION", "dapr.io")
    ]

    ttl = actors_pb2.ExecuteActorStateTransactionRequest(
        actor_type=_COUNTER, actor_id=actor_id, operations=[_upsert("k", b"1", ttlInSeconds="60")]
    )
    err = _refused(stub.ExecuteActorStateTransaction, ttl)
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "ActorStateTTL" in (err.details() or "")


# -- reminders --------------------------------------------------------------------------------------


def _register(stub: dapr_pb2_grpc.DaprStub, actor_id: str, name: str, **fields: object) -> None:
    stub.RegisterActorReminder(
        actors_pb2.RegisterActorReminderRequest(actor_type=_COUNTER, actor_id=actor_id, name=name, **fields)
    )


def _get_reminder(
    stub: dapr_pb2_grpc.DaprStub, actor_id: str, name: str
) -> actors_pb2.GetActorReminderResponse:
    return stub.GetActorReminder(
        actors_pb2.GetActorReminderRequest(actor_type=_COUNTER, actor_id=actor_id, name=name)
    )


def _listed(stub: dapr_pb2_grpc.DaprStub, actor_type: str, actor_id: str | None = None) -> dict[str, object]:
    request = actors_pb2.ListActorRemindersRequest(actor_type=actor_type)
    if actor_id is not None:
        request.actor_id = actor_id
    return {r.name: r.reminder for r in stub.ListActorReminders(request).reminders}


def test_reminder_register_get_list_fire_unregister(stack: Stack, stub: dapr_pb2_grpc.DaprStub) -> None:
    actor_id = _id("rem")
    _register(stub, actor_id, "ping", due_time="1h", period="1m", data=b"payload")
    got = _get_reminder(stub, actor_id, "ping")
    assert (got.actor_type, got.actor_id, got.due_time, got.period) == (
        _COUNTER,
        actor_id,
        "1h",
        "@every 1m0s",
    )
    assert not got.HasField("ttl")  # a duration ttl (or none) is not reported, as daprd
    data = wrappers_pb2.BytesValue()
    assert got.data.Unpack(data)
    assert data.value == b'"cGF5bG9hZA=="'  # daprd json.Marshal's the bytes: their base64 as JSON text

    listed = _listed(stub, _COUNTER, actor_id)
    assert list(listed) == ["ping"]
    assert listed["ping"].period == "@every 1m0s"  # type: ignore[attr-defined]
    assert actor_id in {r.actor_id for r in _listed(stub, _COUNTER).values()}  # type: ignore[attr-defined]

    _advance(stack, 3601)
    fires = wait_for(lambda: RECORD.reminder_fires(actor_id, "ping"))
    assert fires[0][2] == b"payload"  # the SDK decodes the base64 back

    stub.UnregisterActorReminder(
        actors_pb2.UnregisterActorReminderRequest(actor_type=_COUNTER, actor_id=actor_id, name="ping")
    )
    err = _refused(
        stub.GetActorReminder,
        actors_pb2.GetActorReminderRequest(actor_type=_COUNTER, actor_id=actor_id, name="ping"),
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "actor reminder not found: ping"
    assert _listed(stub, _COUNTER, actor_id) == {}


def test_reminder_ttl_instant_and_overwrite(stub: dapr_pb2_grpc.DaprStub) -> None:
    actor_id = _id("ttl")
    _register(stub, actor_id, "t", due_time="1h", period="1h", ttl="2999-01-02T03:04:05Z")
    assert _get_reminder(stub, actor_id, "t").ttl == "2999-01-02T03:04:05Z"
    assert not _listed(stub, _COUNTER, actor_id)["t"].HasField("ttl")  # type: ignore[attr-defined]
    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(
            actor_type=_COUNTER, actor_id=actor_id, name="t", due_time="5m", overwrite=False
        ),
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.details() == "actor reminder already exists: t"
    _register(stub, actor_id, "t", due_time="5m")  # overwrite unset: replaced
    assert _get_reminder(stub, actor_id, "t").due_time == "5m"
    assert not _get_reminder(stub, actor_id, "t").HasField("period")


def test_unregister_reminders_by_type(stub: dapr_pb2_grpc.DaprStub) -> None:
    kind = "ReentrantActor"  # a type of its own: the other tests' CounterActor reminders stay
    a, b = _id("a"), _id("b")
    for actor_id in (a, b):
        for name in ("x", "y"):
            stub.RegisterActorReminder(
                actors_pb2.RegisterActorReminderRequest(
                    actor_type=kind, actor_id=actor_id, name=name, due_time="1h"
                )
            )
    stub.UnregisterActorRemindersByType(
        actors_pb2.UnregisterActorRemindersByTypeRequest(actor_type=kind, actor_id=a)
    )
    assert _listed(stub, kind, a) == {}
    assert sorted(_listed(stub, kind, b)) == ["x", "y"]
    stub.UnregisterActorRemindersByType(actors_pb2.UnregisterActorRemindersByTypeRequest(actor_type=kind))
    assert _listed(stub, kind) == {}


def test_reminder_refusals(stub: dapr_pb2_grpc.DaprStub) -> None:
    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(
            actor_type="NoSuchActor", actor_id="x", name="r", due_time="1s"
        ),
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.details() == "operations on actor reminders are only possible on hosted actor types"
    assert _details(err) == []
    err = _refused(stub.ListActorReminders, actors_pb2.ListActorRemindersRequest(actor_type="NoSuchActor"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(actor_type=_COUNTER, actor_id="x", due_time="1s"),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "invalid request: reminder name cannot be empty"
    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(actor_type=_COUNTER, actor_id="x", name="..", due_time="1s"),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == 'invalid request: name is a path traversal sequence: ".."'

    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(actor_type=_COUNTER, actor_id="x", name="r"),
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "error creating actor reminder: reminder must have a due time or a period"
    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(actor_type=_COUNTER, actor_id="x", name="r", due_time="soon"),
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "error creating actor reminder: unsupported time/duration format: soon"

    err = _refused(
        stub.RegisterActorReminder,
        actors_pb2.RegisterActorReminderRequest(
            actor_type=_COUNTER,
            actor_id="x",
            name="r",
            due_time="1s",
            failure_policy=common_pb2.JobFailurePolicy(drop=common_pb2.JobFailurePolicyDrop()),
        ),
    )
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "failure_policy" in (err.details() or "")


# -- timers -----------------------------------------------------------------------------------------


def _timers_of(actor_id: str) -> list[object]:
    with RECORD.lock:
        return [data for who, _, data in RECORD.timers if who == actor_id]


def test_timer_fires_its_callback_until_unregistered(stack: Stack, stub: dapr_pb2_grpc.DaprStub) -> None:
    actor_id = _id("tim")
    stub.RegisterActorTimer(
        actors_pb2.RegisterActorTimerRequest(
            actor_type=_COUNTER,
            actor_id=actor_id,
            name="tick",
            due_time="10s",
            period="10s",
            callback="on_timer",
            data=b"tock",
        )
    )
    _advance(stack, 11)
    assert wait_for(lambda: _timers_of(actor_id)) == ["dG9jaw=="]  # the data's base64, as daprd sends it
    stub.UnregisterActorTimer(
        actors_pb2.UnregisterActorTimerRequest(actor_type=_COUNTER, actor_id=actor_id, name="tick")
    )
    _advance(stack, 30)
    assert _invoke(stub, actor_id, "GetCount") == b"0"  # a turn after the advance: no timer queued behind
    assert _timers_of(actor_id) == ["dG9jaw=="]


def test_timer_refusals(stub: dapr_pb2_grpc.DaprStub) -> None:
    err = _refused(
        stub.RegisterActorTimer,
        actors_pb2.RegisterActorTimerRequest(actor_type=_COUNTER, actor_id="x", name="a\nb", due_time="1s"),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == 'invalid request: name contains control character at position 1: "a\\nb"'
    err = _refused(
        stub.RegisterActorTimer,
        actors_pb2.RegisterActorTimerRequest(actor_type=_COUNTER, actor_id="x", name="t", period="R0/PT1S"),
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    assert (err.details() or "").startswith("error creating actor timer:")


# -- the API token ----------------------------------------------------------------------------------


def test_actor_rpcs_need_the_api_token(tmp_path: Path) -> None:
    with sidecar_thread(tmp_path, app_id="actors-token", api_token="s3cret") as sidecar:
        with grpc.insecure_channel(f"127.0.0.1:{sidecar.grpc_port}") as channel:
            stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
            request = actors_pb2.ListActorRemindersRequest(actor_type=_COUNTER)
            with pytest.raises(grpc.RpcError) as err:
                stub.ListActorReminders(request)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as err:
                stub.ListActorReminders(request, metadata=[("dapr-api-token", "wrong")])
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as err:  # served: this app hosts no actors
                stub.ListActorReminders(request, metadata=[("dapr-api-token", "s3cret")])
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
