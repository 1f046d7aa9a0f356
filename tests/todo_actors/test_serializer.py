"""The one serializer: user strings survive every SDK call site unchanged, models come back typed.

No `from __future__ import annotations` here on purpose: the SDK reads the probe interface's raw
annotations, exactly as it will read `todo_actors/interface.py`.
"""

import base64
import datetime as dt
import json
from typing import Any

import pytest
from dapr.actor import ActorId, ActorInterface, Remindable, actormethod
from dapr.actor.runtime._reminder_data import ActorReminderData
from dapr.actor.runtime._state_provider import StateProvider
from dapr.actor.runtime._type_information import ActorTypeInformation
from dapr.actor.runtime._type_utils import get_dispatchable_attrs_from_interface
from dapr.actor.runtime.actor import Actor
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.actor.runtime.manager import ActorManager
from dapr.clients.base import DaprActorClientBase
from dapr.ext.workflow import _model_protocol
from dapr.ext.workflow._durabletask.internal import shared
from dapr.serializers import DefaultJSONSerializer
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from todo_actors.commands import AddTodo, CreateList, UpdateTodo
from todo_actors.due import Due
from todo_actors.layout import dump_state, load
from todo_actors.model import TodoItem, TodoList
from todo_actors.serializer import PydanticSerializer
from todo_actors.transitions import add_todo, create_list

SER = PydanticSerializer()
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
TRICKY = ["2025-01-01 file taxes", "5m", "1h", "2025-01-01T00:00:00Z", "2025-01-01", "12m30s"]


def a_list(*titles: str) -> TodoList:
    state = create_list(None, CreateList(owner="ann", title="home"), "home", NOW).state
    for n, title in enumerate(titles):
        state = add_todo(state, AddTodo(title=title), NOW, f"i{n}").state
    return state


class NoSidecar(DaprActorClientBase):  # type: ignore[misc]  # the SDK is untyped for mypy
    """The actor client seam, refusing all I/O: these tests prove the paths they run need none."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unexpected sidecar call {args!r}")

    invoke_method = save_state_transactionally = get_state = _refuse
    register_reminder = unregister_reminder = _refuse
    register_timer = unregister_timer = _refuse


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_stay_strings(text: str) -> None:
    assert SER.deserialize(SER.serialize(text)) == text
    assert SER.deserialize(SER.serialize({"title": text}), object) == {"title": text}
    assert SER.deserialize(SER.serialize([text]), list[str]) == [text]


@pytest.mark.parametrize("text", TRICKY[:4])
def test_default_serializer_would_have_changed_them(text: str) -> None:
    # The reason this module exists: the SDK's default turns user text into other types (or fails).
    default = DefaultJSONSerializer()
    try:
        decoded = default.deserialize(default.serialize({"title": text}))
    except ValueError:  # dateutil's ParserError: "2025-01-01 file taxes" is not a date
        return
    assert decoded["title"] != text
    assert not isinstance(decoded["title"], str)


@pytest.mark.parametrize("text", TRICKY)
def test_date_like_title_round_trips_as_item_and_state(text: str) -> None:
    state = a_list(text)
    item = state.items["i0"]
    assert SER.deserialize(SER.serialize(item), type(item)).title == text
    # State reads come back with data_type=object (plain JSON); load() validates them.
    stored = {k: SER.deserialize(SER.serialize(v), object) for k, v in dump_state(state).items()}
    buckets = [v for k, v in stored.items() if k != "meta"]
    assert load(stored["meta"], buckets).items["i0"].title == text


@given(st.text(min_size=1, max_size=500))
def test_any_unicode_title_round_trips(title: str) -> None:
    cmd = AddTodo(title=title, labels=(title[:64],))
    back = SER.deserialize(SER.serialize(cmd), AddTodo)
    assert back == cmd
    assert SER.deserialize(SER.serialize(title), str) == title
    assert SER.deserialize(SER.serialize({"t": title})) == {"t": title}


def test_models_and_annotated_types_come_back_typed() -> None:
    state = a_list("a", "b")
    assert SER.deserialize(SER.serialize(state), TodoList) == state
    items = list(state.items.values())
    assert SER.deserialize(SER.serialize(items), list[TodoItem]) == items
    assert SER.deserialize(b"null", TodoList | None) is None
    assert SER.deserialize(SER.serialize(None), object) is None
    with pytest.raises(ValidationError):
        SER.deserialize(b'{"title": "x", "owner": "mallory"}', AddTodo)


def test_patch_keeps_absent_apart_from_null_across_the_wire() -> None:
    patch = UpdateTodo(id="i0", due=None, notes="n")
    wire = SER.serialize(patch)
    assert json.loads(wire) == {"id": "i0", "due": None, "notes": "n"}
    back = SER.deserialize(wire, UpdateTodo)
    assert back.changes() == {"due": None, "notes": "n"}


def test_bytes_and_timedeltas_match_the_sdk_wire_format() -> None:
    # Reminder registration: the SDK hands the message serializer its own dict.
    reminder = ActorReminderData("due:a", b"2026-01-01T00:00:00Z", dt.timedelta(seconds=1.5))
    ours = json.loads(SER.serialize(reminder.as_dict()))
    sdk = json.loads(DefaultJSONSerializer().serialize(reminder.as_dict()))
    assert ours == sdk
    assert ours["dueTime"] == "0h0m1s500ms0μs"
    assert SER.deserialize(SER.serialize(b"\x00\xffraw"), bytes) == b"\x00\xffraw"
    assert SER.deserialize(SER.serialize(dt.timedelta(minutes=5)), dt.timedelta) == dt.timedelta(minutes=5)


def test_string_annotations_fail_loudly() -> None:
    with pytest.raises(TypeError, match="from __future__ import annotations"):
        SER.deserialize(b"{}", "AddTodo")


def test_state_cache_refresh_returns_plain_json_that_loads() -> None:
    # After a reentrant save the SDK re-decodes cached values with data_type=object.
    provider = StateProvider(NoSidecar(), SER)
    state = a_list("2025-01-01 file taxes")
    meta = provider.round_trip_state_value(dump_state(state)["meta"])
    buckets = [provider.round_trip_state_value(v) for k, v in dump_state(state).items() if k != "meta"]
    assert isinstance(meta, dict)
    assert load(meta, buckets) == state


# A probe actor driven through the SDK's real ActorManager: method dispatch and reminder callbacks
# decode with this serializer exactly as in the app (no sidecar needed: nothing here saves state).


class ProbeInterface(ActorInterface):  # type: ignore[misc]
    @actormethod(name="Echo")  # type: ignore[untyped-decorator]
    async def echo(self, cmd: AddTodo) -> AddTodo:
        raise NotImplementedError

    @actormethod(name="Titles")  # type: ignore[untyped-decorator]
    async def titles(self, data: dict[str, Any]) -> list[str]:
        raise NotImplementedError


class ProbeActor(Actor, ProbeInterface, Remindable):  # type: ignore[misc]
    received: list[Any] = []

    async def echo(self, cmd: AddTodo) -> AddTodo:
        ProbeActor.received.append(cmd)
        return cmd

    async def titles(self, data: dict[str, Any]) -> list[str]:
        return [str(v) for v in data.values()]

    async def receive_reminder(
        self,
        name: str,
        state: bytes,
        due_time: dt.timedelta,
        period: dt.timedelta,
        ttl: dt.timedelta | None = None,
    ) -> None:
        ProbeActor.received.append((name, state, due_time, period))


def probe_manager() -> ActorManager:
    ctx = ActorRuntimeContext(ActorTypeInformation.create(ProbeActor), SER, SER, NoSidecar(), None)
    return ActorManager(ctx)


async def test_actor_method_gets_a_model_and_the_proxy_gets_one_back() -> None:
    ProbeActor.received.clear()
    cmd = AddTodo(title="2025-01-01 file taxes", due=Due(date=dt.date(2025, 1, 1)), notes="5m")
    reply = await probe_manager().dispatch(ActorId("p1"), "Echo", SER.serialize(cmd))
    assert ProbeActor.received == [cmd]
    attrs: dict[str, Any] = {}
    get_dispatchable_attrs_from_interface(ProbeInterface, attrs)
    assert SER.deserialize(reply, attrs["Echo"]["return_types"]) == cmd
    reply = await probe_manager().dispatch(ActorId("p1"), "Titles", b'{"a":"1h","b":"2025-01-01"}')
    assert SER.deserialize(reply, attrs["Titles"]["return_types"]) == ["1h", "2025-01-01"]


async def test_reminder_callback_keeps_data_and_durations_as_sent() -> None:
    ProbeActor.received.clear()
    data = base64.b64encode(b"2026-03-29T01:30:00Z").decode()
    body = json.dumps({"data": data, "dueTime": "0h0m5s0ms0μs", "period": ""}).encode()
    await probe_manager().fire_reminder(ActorId("p2"), "due:a", body)
    assert ProbeActor.received == [("due:a", b"2026-03-29T01:30:00Z", "0h0m5s0ms0μs", "")]


def test_workflow_payloads_need_no_serializer_and_keep_strings() -> None:
    # dapr.ext.workflow has no serializer seam: it encodes models itself (model_dump(mode="json")) and
    # decodes plain JSON, coercing to the model a workflow or activity annotates.
    cmd = AddTodo(title="2025-01-01 file taxes", notes="5m", due=Due(date=dt.date(2025, 1, 1)))
    decoded = shared.from_json(shared.to_json(cmd))
    assert decoded["title"] == "2025-01-01 file taxes" and decoded["notes"] == "5m"
    assert _model_protocol.coerce_to_model(decoded, AddTodo) == cmd
