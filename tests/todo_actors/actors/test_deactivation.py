"""A deactivated list lets go of its loaded list at once: the actor and its outbox refer to each other, so
the instance waits for a cyclic collection (which the heap policy may defer), but its items must not."""

from __future__ import annotations

from dapr.actor.runtime.runtime import ActorRuntime

from tests.todo_actors.actors.conftest import Stack, new_id
from todo_actors.actor import TodoListActor
from todo_actors.commands import AddTodo, CreateList
from todo_actors.interface import LIST_ACTOR_TYPE


async def test_deactivation_drops_the_loaded_list(stack: Stack) -> None:
    list_id = new_id()
    proxy = stack.list_proxy(list_id)
    (await proxy.CreateList(CreateList(owner="alice", title="mem"))).unwrap()
    (await proxy.AddTodo(AddTodo(caller="alice", title="one"))).unwrap()
    manager = ActorRuntime._actor_managers[LIST_ACTOR_TYPE]
    actor = manager._active_actors[list_id]
    assert isinstance(actor, TodoListActor)
    assert actor._list is not None and len(actor._list.items) == 1
    stack.deactivate(LIST_ACTOR_TYPE, list_id)
    assert list_id not in manager._active_actors
    assert actor._list is None and not actor._loaded
    again = (await proxy.AddTodo(AddTodo(caller="alice", title="two"))).unwrap()  # reloads
    assert again.list_version == 3
