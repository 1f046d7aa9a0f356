"""The actor interfaces the API proxies through: one typed input model and one reply model per method.

Domain errors cross the actor boundary as data (`error: ErrorInfo`), not as exceptions: the SDK would turn
an exception into a 500 with a repr string. `unwrap()` on the API side re-raises the `TodoError`.

No `from __future__ import annotations` here: the SDK reads these annotations at run time.
"""

from typing import Generic, Literal, TypeVar

from dapr.actor import ActorInterface, actormethod
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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
from todo_actors.errors import ErrorInfo, TodoError
from todo_actors.model import ListSummary, Role, TodoItem

__all__ = [
    "LIST_ACTOR_TYPE",
    "OWNER_ACTOR_TYPE",
    "Ack",
    "AckReply",
    "ManyReply",
    "ManyResult",
    "GetList",
    "GetTodo",
    "ItemReply",
    "ItemResult",
    "ListChange",
    "ListReply",
    "Member",
    "Members",
    "MembersReply",
    "OwnedList",
    "OwnerIndexActorInterface",
    "OwnerLists",
    "OwnerListsReply",
    "PageRequest",
    "QueryTodos",
    "Reply",
    "StepResult",
    "TodoListActorInterface",
    "TodoPage",
    "TodoPageReply",
]

LIST_ACTOR_TYPE = "TodoListActor"
OWNER_ACTOR_TYPE = "OwnerIndexActor"

T = TypeVar("T")


class Reply(BaseModel, Generic[T]):
    """`value` on success, `error` on a domain error; exactly one is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: T | None = None
    error: ErrorInfo | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise TodoError.from_info(self.error)
        assert self.value is not None
        return self.value


class Ack(BaseModel):
    """`members`: who had the list (owner first) when a list delete answers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    members: tuple[str, ...] = ()


class GetList(BaseModel):
    """Read a list; a member below `at_least` gets Forbidden (routes that read in order to change)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    caller: str | None = None
    at_least: Role = "viewer"


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    user: str
    role: Role


class Members(BaseModel):
    """A list's members, its owner first; `list_version` is the list's ETag."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    members: list[Member]
    list_version: int


class GetTodo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    caller: str | None = None
    id: str


class QueryTodos(BaseModel):
    """Filters and a cursor for one page of a list's items, in display order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    caller: str | None = None
    status: Literal["open", "completed"] | None = None
    due_before: AwareDatetime | None = None
    due_after: AwareDatetime | None = None
    label: str | None = None
    series_id: str | None = None
    parent_id: str | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None


class TodoPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    items: list[TodoItem]
    next_cursor: str | None = None
    list_version: int


class ItemResult(BaseModel):
    """An item after a change (or `None` when an idempotent add found the item deleted), with the
    list's new version for the ETag."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    item: TodoItem | None
    list_version: int


class OwnedList(BaseModel):
    """An entry of a user's index: a list they own, or (`role` editor/viewer) one shared with them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    list_id: str
    created_at: AwareDatetime
    role: Role = "owner"


class OwnerLists(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lists: list[OwnedList]
    next_cursor: str | None = None


class PageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None


class ListChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    list_id: str
    created_at: AwareDatetime | None = None
    role: Role = "owner"


class StepResult(BaseModel):
    """One step of a batch: its `error`, else the item it left (a deleted item's last snapshot), or
    `list` for the list-wide steps (list update, reorder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    item: TodoItem | None = None
    list: ListSummary | None = None
    error: ErrorInfo | None = None


class ManyResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    results: list[StepResult]
    list_version: int | None


ListReply = Reply[ListSummary]
ItemReply = Reply[ItemResult]
TodoPageReply = Reply[TodoPage]
AckReply = Reply[Ack]
OwnerListsReply = Reply[OwnerLists]
ManyReply = Reply[ManyResult]
MembersReply = Reply[Members]


class TodoListActorInterface(ActorInterface):
    """One actor per list (actor id = list id), holding its items."""

    @actormethod(name="CreateList")
    async def create_list(self, cmd: CreateList) -> ListReply: ...

    @actormethod(name="GetList")
    async def get_list(self, query: GetList) -> ListReply: ...

    @actormethod(name="UpdateList")
    async def update_list(self, cmd: UpdateList) -> ListReply: ...

    @actormethod(name="DeleteList")
    async def delete_list(self, cmd: DeleteList) -> AckReply: ...

    @actormethod(name="AddTodo")
    async def add_todo(self, cmd: AddTodo) -> ItemReply: ...

    @actormethod(name="GetTodo")
    async def get_todo(self, query: GetTodo) -> ItemReply: ...

    @actormethod(name="QueryTodos")
    async def query_todos(self, query: QueryTodos) -> TodoPageReply: ...

    @actormethod(name="UpdateTodo")
    async def update_todo(self, cmd: UpdateTodo) -> ItemReply: ...

    @actormethod(name="CompleteTodo")
    async def complete_todo(self, cmd: CompleteTodo) -> ItemReply: ...

    @actormethod(name="ReopenTodo")
    async def reopen_todo(self, cmd: ReopenTodo) -> ItemReply: ...

    @actormethod(name="DeleteTodo")
    async def delete_todo(self, cmd: DeleteTodo) -> ItemReply: ...

    @actormethod(name="ReorderTodos")
    async def reorder_todos(self, cmd: ReorderTodos) -> ListReply: ...

    @actormethod(name="Batch")
    async def batch(self, cmd: ApplyMany) -> ManyReply: ...

    @actormethod(name="Members")
    async def members(self, query: GetList) -> MembersReply: ...

    @actormethod(name="AddMember")
    async def add_member(self, cmd: AddMember) -> MembersReply: ...

    @actormethod(name="SetMemberRole")
    async def set_member_role(self, cmd: SetMemberRole) -> MembersReply: ...

    @actormethod(name="RemoveMember")
    async def remove_member(self, cmd: RemoveMember) -> MembersReply: ...


class OwnerIndexActorInterface(ActorInterface):
    """One actor per user (actor id = user id): which lists the user owns or shares (actors cannot be
    queried)."""

    @actormethod(name="AddList")
    async def add_list(self, change: ListChange) -> AckReply: ...

    @actormethod(name="RemoveList")
    async def remove_list(self, change: ListChange) -> AckReply: ...

    @actormethod(name="Lists")
    async def lists(self, page: PageRequest) -> OwnerListsReply: ...
