"""The wire shape of `POST /v1/batch`: one model per command type (told apart by `type`), with the same
field rules as the single-call bodies plus the ids they address, and the per-command results.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import ID_PATTERN
from api.problems import Problem
from api.schemas import ItemCreate, ItemPatch, ListCreate, ListPatch, WholePosition
from todo_actors.model import ListSummary, TodoItem

__all__ = [
    "MAX_COMMANDS",
    "BatchRequest",
    "BatchResponse",
    "Command",
    "CommandResult",
    "ItemAction",
    "ItemAdd",
    "ItemMove",
    "ItemReorder",
    "ItemUpdate",
    "ListAdd",
    "ListDelete",
    "ListUpdate",
]

MAX_COMMANDS = 100

Ref = Annotated[str, Field(pattern=ID_PATTERN, description="An id, or the `temp_id` of an earlier command")]
CommandUuid = Annotated[
    str, Field(pattern=r"^[\x21-\x7e]{1,128}$", description="Makes the command idempotent (per user)")
]
TempId = Annotated[
    str | None,
    Field(pattern=ID_PATTERN, description="A name for what this command creates, for later commands"),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OmitToKeep(BaseModel):
    """Fields an explicit null cannot clear (leave them out to keep them), refused with the request as the
    document says (`api.openapi`), not in the command's own result as the single calls' domain check does."""

    omit_to_keep: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _no_null(self) -> Self:
        for name in self.omit_to_keep:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null (leave it out to keep it)")
        return self


class ListUpdateArgs(_OmitToKeep, ListPatch):
    omit_to_keep = ("title", "tz")
    id: Ref


class ListRef(_Body):
    id: Ref


class ItemAddArgs(ItemCreate):
    list_id: Ref


class ItemUpdateArgs(_OmitToKeep, ItemPatch):
    omit_to_keep = ("title", "position")
    list_id: Ref
    id: Ref


class ItemRef(_Body):
    list_id: Ref
    id: Ref


class ItemMoveArgs(_OmitToKeep, _Body):
    """Move within the list: under another parent (`null`: to the top level) and/or to a position.
    Items cannot move to another list (two actors, no atomic move between them)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"anyOf": [{"required": ["parent_id"]}, {"required": ["position"]}]}
    )
    omit_to_keep = ("position",)
    list_id: Ref
    id: Ref
    parent_id: Ref | None = None
    position: WholePosition | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> ItemMoveArgs:
        if not self.model_fields_set & {"parent_id", "position"}:
            raise ValueError("a move names `parent_id` and/or `position`")
        return self


class ItemReorderArgs(_Body):
    list_id: Ref
    ids: Annotated[list[Ref], Field(min_length=1, max_length=10_000)]


class _Command(_Body):
    uuid: CommandUuid


class ListAdd(_Command):
    type: Literal["list_add"]
    temp_id: TempId = None
    args: ListCreate


class ListUpdate(_Command):
    type: Literal["list_update"]
    args: ListUpdateArgs


class ListDelete(_Command):
    type: Literal["list_delete"]
    args: ListRef


class ItemAdd(_Command):
    type: Literal["item_add"]
    temp_id: TempId = None
    args: ItemAddArgs


class ItemUpdate(_Command):
    type: Literal["item_update"]
    args: ItemUpdateArgs


class ItemAction(_Command):
    type: Literal["item_complete", "item_reopen", "item_delete"]
    args: ItemRef


class ItemMove(_Command):
    type: Literal["item_move"]
    args: ItemMoveArgs


class ItemReorder(_Command):
    type: Literal["item_reorder"]
    args: ItemReorderArgs


Command = Annotated[
    ListAdd | ListUpdate | ListDelete | ItemAdd | ItemUpdate | ItemAction | ItemMove | ItemReorder,
    Field(discriminator="type"),
]


class BatchRequest(_Body):
    commands: Annotated[list[Command], Field(min_length=1, max_length=MAX_COMMANDS)]


class CommandResult(BaseModel):
    """One command's answer: `status` as the single-call route would answer, with the `item` or `list`
    it left, or the `error` (a problem document); `replayed` when its `uuid` had been applied before."""

    uuid: str
    status: int = Field(ge=200, le=599)
    item: TodoItem | None = None
    list: ListSummary | None = None
    error: Problem | None = None
    replayed: bool = False


class BatchResponse(BaseModel):
    results: list[CommandResult]
    temp_id_mapping: dict[str, str] = Field(description="temp_id -> id of what the command created")
