"""Inputs of the list actor's methods: one pydantic model per call, unknown fields rejected.

Patches (`UpdateList`, `UpdateTodo`) tell "absent" from "null": an absent field is left alone, an
explicit null clears it. They serialize only the fields that were set, so the distinction survives the
trip through the actor proxy.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from todo_actors.due import Due, Reminder, ZoneKey
from todo_actors.model import (
    Description,
    ItemId,
    Labels,
    ListTitle,
    MemberRole,
    Notes,
    Occurrence,
    Position,
    Priority,
    Role,
    SeriesId,
    Title,
    UserId,
    Version,
)

__all__ = [
    "MAX_STEPS",
    "AddMember",
    "AddStep",
    "AddTodo",
    "ApplyMany",
    "Command",
    "CompleteTodo",
    "CreateList",
    "DeleteList",
    "DeleteTodo",
    "Patch",
    "RemoveMember",
    "ReopenTodo",
    "ReorderTodos",
    "SetMemberRole",
    "Step",
    "StepOf",
    "UpdateList",
    "UpdateTodo",
]

# A command may carry more reminders than a list allows, so the domain can answer LimitExceeded (with
# the configured limit) rather than a bare validation error; this cap only bounds the payload.
_MAX_REMINDERS_IN_COMMAND = 100
_MAX_REORDER = 10_000


def _unique_ids(ids: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    return ids


Reminders = Annotated[tuple[Reminder, ...], Field(max_length=_MAX_REMINDERS_IN_COMMAND)]


class Command(BaseModel):
    """Base of every command on an existing list.

    `caller` is the authenticated user the API acts for (set from the token, never from a client
    body); when set, a list owned by someone else answers NotFound, so one actor call does both the
    ownership check and the change. `expected_version` (the ETag from If-Match) makes the call fail
    with VersionConflict if the target changed since it was read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    caller: UserId | None = None
    expected_version: Version | None = None


class Patch(Command):
    """A command whose unset fields mean "leave alone" and whose explicit nulls mean "clear"."""

    @model_serializer(mode="wrap")
    def _only_set_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}

    def changes(self) -> dict[str, Any]:
        """The fields to change (as model values), keyed by name; excludes the command envelope."""
        envelope = set(Command.model_fields) | {"id"}
        return {k: getattr(self, k) for k in self.model_fields_set - envelope}

    def _no_null(self, *names: str) -> None:
        for name in names:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null")


class CreateList(BaseModel):
    """Create a list; `owner` is set by the API from the token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: UserId
    title: ListTitle
    description: Description = ""
    tz: ZoneKey = "UTC"


class UpdateList(Patch):
    """Change list fields; `expected_version` is the list's version. Changing `tz` moves the
    reminders of all-day and floating dues."""

    title: ListTitle | None = None
    description: Description | None = None
    tz: ZoneKey | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> UpdateList:
        self._no_null("title", "tz")
        return self


class DeleteList(Command):
    """Delete the list with all its items; `expected_version` is the list's version."""


class AddTodo(Command):
    """Add an item; `expected_version` is the list's version.

    With `series_id` + `occurrence` the add is idempotent: the same key again returns the item made
    the first time (or nothing, if the user deleted it) instead of a duplicate.
    `position` defaults to after the last item.
    """

    title: Title
    notes: Notes = ""
    priority: Priority = 0
    labels: Labels = ()
    due: Due | None = None
    start: Due | None = None
    deadline: Due | None = None
    reminders: Reminders = ()
    position: Position | None = None
    parent_id: ItemId | None = None
    series_id: SeriesId | None = None
    occurrence: Occurrence | None = None

    @model_validator(mode="after")
    def _series_pair(self) -> AddTodo:
        if (self.series_id is None) != (self.occurrence is None):
            raise ValueError("'series_id' and 'occurrence' go together")
        return self


class UpdateTodo(Patch):
    """Change item fields; `expected_version` is the item's version. Null clears `due`, `start`,
    `deadline`, `parent_id` and resets `notes`, `labels`, `reminders`, `priority` to empty/0."""

    id: ItemId
    title: Title | None = None
    notes: Notes | None = None
    priority: Priority | None = None
    labels: Labels | None = None
    due: Due | None = None
    start: Due | None = None
    deadline: Due | None = None
    reminders: Reminders | None = None
    position: Position | None = None
    parent_id: ItemId | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> UpdateTodo:
        self._no_null("title", "position")
        return self


class CompleteTodo(Command):
    """Mark an item completed; `expected_version` is the item's version. Completing a completed item
    changes nothing."""

    id: ItemId


class ReopenTodo(Command):
    """Mark a completed item open again; `expected_version` is the item's version."""

    id: ItemId


class DeleteTodo(Command):
    """Delete an item and its subtasks; `expected_version` is the item's version."""

    id: ItemId


class ReorderTodos(Command):
    """Put the given items in the given order; `expected_version` is the list's version.

    The items keep the slots they occupy in the current order and are redistributed over them, so
    the full id list is a complete reorder and two ids swap places; other items do not move.
    """

    ids: Annotated[
        tuple[ItemId, ...], Field(min_length=1, max_length=_MAX_REORDER), AfterValidator(_unique_ids)
    ]


class AddMember(Command):
    """Share the list with `user` (owner only); `expected_version` is the list's version."""

    user: UserId
    role: MemberRole


class SetMemberRole(Command):
    """Change a member's role (owner only). `owner` hands the list over: `user` becomes its owner and
    the caller, the old owner, stays on as an editor."""

    user: UserId
    role: Role


class RemoveMember(Command):
    """Take `user` off the list: the owner removes anyone but themself; any member may leave."""

    user: UserId


# One list's share of a batch (`POST /v1/batch` takes at most 100 commands).
MAX_STEPS = 100


class AddStep(BaseModel):
    """Add an item under an id the caller chose, so later steps of the batch can name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["add"] = "add"
    new_id: ItemId
    cmd: AddTodo


class StepOf(BaseModel):
    """Any other change of one list, as the single-call method would take it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["update_list", "update", "complete", "reopen", "delete", "reorder"]
    cmd: UpdateList | UpdateTodo | CompleteTodo | ReopenTodo | DeleteTodo | ReorderTodos

    @model_validator(mode="before")
    @classmethod
    def _typed_cmd(cls, data: Any) -> Any:
        # The union alone cannot tell a CompleteTodo from a ReopenTodo or DeleteTodo: `kind` does.
        if isinstance(data, dict) and isinstance(data.get("cmd"), dict):
            model = _STEP_COMMANDS.get(data.get("kind"))  # type: ignore[arg-type]
            if model is not None:
                data = {**data, "cmd": model.model_validate(data["cmd"])}
        return data

    @model_validator(mode="after")
    def _cmd_of_kind(self) -> StepOf:
        if type(self.cmd) is not _STEP_COMMANDS[self.kind]:
            raise ValueError(f"a {self.kind!r} step takes a {_STEP_COMMANDS[self.kind].__name__}")
        return self


Step = Annotated[AddStep | StepOf, Field(discriminator="kind")]


class ApplyMany(BaseModel):
    """Changes of one list applied in order in one actor turn, each on its own (see `apply_many`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: Annotated[tuple[Step, ...], Field(min_length=1, max_length=MAX_STEPS)]


_STEP_COMMANDS: dict[str, type[BaseModel]] = {
    "update_list": UpdateList,
    "update": UpdateTodo,
    "complete": CompleteTodo,
    "reopen": ReopenTodo,
    "delete": DeleteTodo,
    "reorder": ReorderTodos,
}
