"""Registration and configuration of the todo actors, without a sidecar."""

from __future__ import annotations

import datetime as dt

import pytest
from dapr.actor.runtime._type_information import ActorTypeInformation

from todo_actors.actor import TodoListActor
from todo_actors.config import ActorsConfig, wall_clock
from todo_actors.interface import LIST_ACTOR_TYPE, OWNER_ACTOR_TYPE
from todo_actors.owner import OwnerIndexActor


def test_actor_types_are_named_as_the_interface_says() -> None:
    # The SDK derives the type name from the class name; the API proxies by the constants.
    assert ActorTypeInformation.create(TodoListActor).type_name == LIST_ACTOR_TYPE
    assert ActorTypeInformation.create(OwnerIndexActor).type_name == OWNER_ACTOR_TYPE
    assert ActorTypeInformation.create(TodoListActor).is_remindable()


@pytest.mark.parametrize(
    "bad",
    [
        {"default_list_zone": "Mars/Olympus"},
        {"default_list_zone": "localtime"},
        {"pubsub_name": ""},
        {"task_events_topic": ""},
        {"lists_per_owner": -1},
        {"outbox_retry": dt.timedelta(milliseconds=10)},
    ],
)
def test_config_rejects_unsafe_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ActorsConfig(**bad)  # type: ignore[arg-type]


def test_the_clock_must_be_aware() -> None:
    assert ActorsConfig().now().tzinfo is not None
    assert wall_clock().utcoffset() == dt.timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ActorsConfig(clock=lambda: dt.datetime(2026, 1, 1)).now()
