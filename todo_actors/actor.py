"""The list actor: a thin shell that loads a `TodoList`, runs a pure transition and saves what changed.

One actor per list (actor id = list id). The loaded list is cached for the activation (loading 5,000
items costs a few hundred ms); each change writes only `layout.state_changes`, plus its events and
reminder changes through the outbox in the same transaction, then applies them. State goes through
`ActorStore`, not the SDK's state manager, whose cache would hold a second copy of the list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from dapr.actor import Actor, ActorId, Remindable
from dapr.actor.runtime.context import ActorRuntimeContext

from todo_actors import members as mb
from todo_actors import transitions as tr
from todo_actors.actor_state import NO_STATE_MANAGER, ActorStore
from todo_actors.batch import step_results, transition_of
from todo_actors.change import Outcome, apply_many, require
from todo_actors.commands import (
    AddMember,
    AddTodo,
    ApplyMany,
    CompleteTodo,
    CreateList,
    DeleteList,
    DeleteTodo,
    RemoveMember,
    ReopenTodo,
    ReorderTodos,
    SetMemberRole,
    UpdateList,
    UpdateTodo,
)
from todo_actors.config import ActorsConfig
from todo_actors.errors import NotFound
from todo_actors.events import ListEvent
from todo_actors.interface import (
    Ack,
    AckReply,
    GetList,
    GetTodo,
    ItemReply,
    ItemResult,
    ListReply,
    ManyReply,
    ManyResult,
    Member,
    Members,
    MembersReply,
    QueryTodos,
    TodoListActorInterface,
    TodoPageReply,
)
from todo_actors.layout import META_KEY, item_keys, load, state_changes
from todo_actors.model import TodoList
from todo_actors.notifications import REMINDER_FIRED, reminder_fired
from todo_actors.outbox import RETRY_REMINDER, Outbox, OutboxEvent, reminder_ops, task_event_type
from todo_actors.publisher import EventPublisher
from todo_actors.query import query_page
from todo_actors.reminders import (
    ReminderChanges,
    is_current_reminder,
    parse_reminder_name,
    read_reminder_payload,
)
from todo_actors.replies import reply

__all__ = ["TodoListActor"]

log = logging.getLogger("todo_actors.actor")

_Transition = Callable[[TodoList | None, dt.datetime], Outcome]

# Bucket reads in flight while loading a list (each is one HTTP request to the sidecar).
_LOAD_CONCURRENCY = 16


class TodoListActor(Actor, TodoListActorInterface, Remindable):
    """Holds one list and its items; the class name is the actor type (`LIST_ACTOR_TYPE`).

    Domain errors come back in the reply's `error`; anything else (the sidecar unreachable, a failed
    save) raises, and the activation forgets its cached state so the next call reloads it.
    """

    def __init__(
        self, ctx: ActorRuntimeContext, actor_id: ActorId, config: ActorsConfig, publisher: EventPublisher
    ) -> None:
        super().__init__(ctx, actor_id)
        # `_state_manager` is the SDK's attribute for subclasses (its examples use it); no public setter.
        self._state_manager = NO_STATE_MANAGER
        self._config = config
        self._list: TodoList | None = None
        self._loaded = False
        self._store = ActorStore(self)
        self._outbox = Outbox(
            self, self._store, publisher, config.pubsub_name, config.now, config.outbox_retry
        )

    # lifecycle ---------------------------------------------------------------------------------------

    async def _on_activate(self) -> None:
        # Effects a previous activation saved but did not apply (a crash, a failed publish).
        await self._outbox.flush(clean_now=True)

    async def _on_deactivate(self) -> None:
        await self._outbox.release()
        # The actor and its outbox refer to each other, so this instance dies in a reference cycle, which
        # the process's heap policy may have frozen: drop the list now (the bulk of it) by reference count.
        self._list, self._loaded = None, False

    # list methods ------------------------------------------------------------------------------------

    async def create_list(self, cmd: CreateList) -> ListReply:
        if "tz" not in cmd.model_fields_set:
            cmd = cmd.model_copy(update={"tz": self._config.default_list_zone})

        async def run() -> Any:
            outcome = await self._change(lambda state, now: tr.create_list(state, cmd, self.id.id, now))
            return outcome.state.summary(cmd.owner)

        return await reply(ListReply, run)

    async def get_list(self, query: GetList) -> ListReply:
        async def run() -> Any:
            return require(await self._current(), query.caller, query.at_least).summary(query.caller)

        return await reply(ListReply, run)

    async def update_list(self, cmd: UpdateList) -> ListReply:
        async def run() -> Any:
            outcome = await self._change(lambda state, now: tr.update_list(state, cmd, now))
            return outcome.state.summary(cmd.caller)

        return await reply(ListReply, run)

    async def delete_list(self, cmd: DeleteList) -> AckReply:
        async def run() -> Any:
            state = await self._current()
            deletion = tr.delete_list(state, cmd, self._config.now())
            assert state is not None
            await self._commit(state, None, deletion.events, deletion.reminders)
            return Ack(version=state.version + 1, members=(state.owner, *state.recipients()))

        return await reply(AckReply, run)

    # members ---------------------------------------------------------------------------------------

    async def members(self, query: GetList) -> MembersReply:
        async def run() -> Any:
            return _members(require(await self._current(), query.caller, "viewer"))

        return await reply(MembersReply, run)

    async def add_member(self, cmd: AddMember) -> MembersReply:
        return await self._member_change(lambda state, now: mb.add_member(state, cmd, now))

    async def set_member_role(self, cmd: SetMemberRole) -> MembersReply:
        return await self._member_change(lambda state, now: mb.set_member_role(state, cmd, now))

    async def remove_member(self, cmd: RemoveMember) -> MembersReply:
        return await self._member_change(lambda state, now: mb.remove_member(state, cmd, now))

    async def _member_change(self, transition: _Transition) -> MembersReply:
        async def run() -> Any:
            return _members((await self._change(transition)).state)

        return await reply(MembersReply, run)

    # item methods ------------------------------------------------------------------------------------

    async def add_todo(self, cmd: AddTodo) -> ItemReply:
        limits = self._config.limits

        async def run() -> Any:
            new_id = uuid.uuid4().hex
            outcome = await self._change(lambda state, now: tr.add_todo(state, cmd, now, new_id, limits))
            return ItemResult(item=outcome.item, list_version=outcome.state.version)

        return await reply(ItemReply, run)

    async def get_todo(self, query: GetTodo) -> ItemReply:
        async def run() -> Any:
            state = _visible(await self._current(), query.caller)
            item = state.items.get(query.id)
            if item is None:
                raise NotFound(f"no item {query.id!r} in this list")
            return ItemResult(item=item, list_version=state.version)

        return await reply(ItemReply, run)

    async def query_todos(self, query: QueryTodos) -> TodoPageReply:
        async def run() -> Any:
            state = _visible(await self._current(), query.caller)
            return query_page(state, query)

        return await reply(TodoPageReply, run)

    async def update_todo(self, cmd: UpdateTodo) -> ItemReply:
        limits = self._config.limits
        return await self._item_change(lambda state, now: tr.update_todo(state, cmd, now, limits))

    async def complete_todo(self, cmd: CompleteTodo) -> ItemReply:
        return await self._item_change(lambda state, now: tr.complete_todo(state, cmd, now))

    async def reopen_todo(self, cmd: ReopenTodo) -> ItemReply:
        return await self._item_change(lambda state, now: tr.reopen_todo(state, cmd, now))

    async def delete_todo(self, cmd: DeleteTodo) -> ItemReply:
        limits = self._config.limits
        return await self._item_change(lambda state, now: tr.delete_todo(state, cmd, now, limits))

    async def reorder_todos(self, cmd: ReorderTodos) -> ListReply:
        async def run() -> Any:
            outcome = await self._change(lambda state, now: tr.reorder(state, cmd, now))
            return outcome.state.summary(cmd.caller)

        return await reply(ListReply, run)

    async def batch(self, cmd: ApplyMany) -> ManyReply:
        """Every step in this one turn, with one save of the state and of all their effects."""
        limits = self._config.limits

        async def run() -> Any:
            old = await self._current()
            changes = [transition_of(step, limits) for step in cmd.steps]
            many = apply_many(old, changes, self._config.now())
            if many.changed:
                await self._commit(old, many.state, many.events, many.reminders)
            version = None if many.state is None else many.state.version
            return ManyResult(results=step_results(cmd.steps, many), list_version=version)

        return await reply(ManyReply, run)

    # reminders ---------------------------------------------------------------------------------------

    async def receive_reminder(
        self, name: str, state: bytes, due_time: Any, period: Any, ttl: Any = None
    ) -> None:
        """Route by name: the outbox retry, or an item's `due:`/`rem:` reminder (notify if current).

        `due_time` and `period` are ignored: with this project's serializer they are strings ("" from
        Dapr 1.15+); the fire instant travels in `state`.
        """
        if name == RETRY_REMINDER:
            await self._outbox.on_retry_reminder()
            return
        ref = parse_reminder_name(name)
        fire_at = read_reminder_payload(state)
        if ref is None or fire_at is None:
            log.warning("list %s: ignoring reminder %r with data %r", self.id, name, state[:100])
            return
        current = await self._current()
        item = None if current is None else current.items.get(ref.item_id)
        if current is None or item is None or not is_current_reminder(item, name, fire_at, current.zone):
            log.info("list %s: reminder %s for %s is stale; dropped", self.id, name, fire_at.isoformat())
            return
        notice = reminder_fired(current, item, name, fire_at)
        event = OutboxEvent.of(self._config.reminders_topic, notice.id, REMINDER_FIRED, notice)
        await self._save(lambda: self._outbox.stage(events=[event]))
        await self._outbox.flush(clean_now=True)  # a repeated notification would reach the user again

    # the shell ---------------------------------------------------------------------------------------

    async def _current(self) -> TodoList | None:
        """The list as stored (None if it does not exist), loaded once per activation."""
        if not self._loaded:
            store = self._store
            found, meta = await store.try_get(META_KEY)
            loaded = None
            if found and meta is not None:
                limit = asyncio.Semaphore(_LOAD_CONCURRENCY)

                async def read(key: str) -> Any:
                    async with limit:
                        ok, value = await store.try_get(key)
                    if not ok:
                        raise RuntimeError(f"list {self.id}: state key {key!r} named by meta is missing")
                    return value

                buckets = await asyncio.gather(*(read(k) for k in item_keys(meta)))
                loaded = load(meta, buckets)
            self._list, self._loaded = loaded, True
        return self._list

    async def _change(self, transition: _Transition) -> Outcome:
        old = await self._current()
        outcome = transition(old, self._config.now())
        if outcome.changed:
            await self._commit(old, outcome.state, outcome.events, outcome.reminders)
        return outcome

    async def _item_change(self, transition: _Transition) -> ItemReply:
        async def run() -> Any:
            outcome = await self._change(transition)
            return ItemResult(item=outcome.item, list_version=outcome.state.version)

        return await reply(ItemReply, run)

    async def _commit(
        self,
        old: TodoList | None,
        new: TodoList | None,
        events: tuple[ListEvent, ...],
        reminders: ReminderChanges,
    ) -> None:
        """Save the change with its effects in one transaction, then apply the effects."""
        changes = state_changes(old, new)
        topic = self._config.task_events_topic
        entries = [OutboxEvent.of(topic, e.id, task_event_type(e), e) for e in events]

        async def write() -> None:
            for key, value in changes.upserts.items():
                self._store.set(key, value)
            for key in changes.deletes:
                self._store.remove(key)
            await self._outbox.stage(events=entries, reminders=reminder_ops(reminders))

        await self._save(write)
        self._list = new
        await self._outbox.flush()

    async def _save(self, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` (staging writes) and commit them as one transaction; on any failure forget every
        cache, since whether the store took the transaction is unknown: the next call reloads."""
        try:
            await write()
            await self._store.commit()
        except BaseException:
            self._store.discard()
            self._list, self._loaded = None, False
            self._outbox.forget()
            raise


def _visible(state: TodoList | None, caller: str | None) -> TodoList:
    # Like the transitions: another user's list answers exactly like a missing one; any member reads.
    return require(state, caller, "viewer")


def _members(state: TodoList) -> Members:
    owner = Member(user=state.owner, role="owner")
    others = [Member(user=u, role=state.members[u]) for u in state.recipients()]
    return Members(members=[owner, *others], list_version=state.version)
