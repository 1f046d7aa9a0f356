"""`/v1/lists/{id}/members`: share a list with other users as editors or viewers, change roles, hand the
list over, remove members or leave.

The list actor decides (its turn checks the caller's role and changes the membership); each user's index
actor is updated after it, idempotently, so a retried request repairs an index a failed one left behind.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.deps import CurrentUser, IfMatch, ListId, ListProxy, Resources, ResourcesDep, if_match_version
from api.openapi import problem_responses
from api.responses import model_response
from todo_actors.commands import AddMember, RemoveMember, SetMemberRole
from todo_actors.errors import LimitExceeded
from todo_actors.interface import GetList, ListChange, Member, Members
from todo_actors.model import MemberRole, Role, UserId

__all__ = ["MemberCreate", "MemberPage", "MemberPatch", "router"]

router = APIRouter(
    prefix="/v1/lists",
    tags=["members"],
    responses=problem_responses(400, 401, 403, 404, 422, 429, 502, 503),
)

# A member's index actor has their user id as its actor id, and an actor id travels as one path segment of
# Dapr's HTTP API: any character but `/` (which every router splits on) gets there intact.
_MEMBER_PATTERN = r"^[^/]+$"

MemberUser = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=_MEMBER_PATTERN,
        description="The member's user id (the `sub` of their token)",
    ),
]
# pydantic leaves a pattern checked after `UserId`'s own validator out of the JSON schema: say it there too,
# or the OpenAPI document would promise that a `user` with a `/` is accepted.
MemberId = Annotated[
    UserId,
    Field(
        pattern=_MEMBER_PATTERN,
        json_schema_extra={"pattern": _MEMBER_PATTERN},
        description="The `sub` of their token (no `/`)",
    ),
]


class MemberCreate(BaseModel):
    """Share the list with `user` (their token's `sub`) in `role`."""

    model_config = ConfigDict(extra="forbid")

    user: MemberId
    role: MemberRole = Field(description="`editor` (items, reminders, subtasks, series) or `viewer` (reads)")


class MemberPatch(BaseModel):
    """A new role; `owner` hands the list over (the old owner stays on as an editor)."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberPage(BaseModel):
    """Everyone on the list, its owner first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[Member]


def _member(members: Members, user: str) -> Member:
    return next(m for m in members.members if m.user == user)


@router.get(
    "/{list_id:segment}/members",
    response_model=MemberPage,
    summary="The list's members with their roles, owner first (ETag = the list's version)",
)
async def list_members(list_id: ListId, user: CurrentUser, actor: ListProxy) -> Response:
    members = (await actor.members(GetList(caller=user))).unwrap()
    return model_response(MemberPage(items=members.members), version=members.list_version)


@router.post(
    "/{list_id:segment}/members",
    status_code=201,
    response_model=Member,
    responses=problem_responses(409, 412, 413),
    summary="Share the list with a user as editor or viewer (owner only)",
)
async def add_member(
    list_id: ListId,
    body: MemberCreate,
    user: CurrentUser,
    actor: ListProxy,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    cmd = AddMember(caller=user, expected_version=if_match_version(if_match), user=body.user, role=body.role)
    members = (await actor.add_member(cmd)).unwrap()
    try:
        await _index(resources, body.user, ListChange(list_id=list_id, role=body.role))
    except LimitExceeded:
        # Their index is full: take them off again, so that no one is on a list they cannot find.
        (await actor.remove_member(RemoveMember(caller=user, user=body.user))).unwrap()
        raise
    location = f"/v1/lists/{list_id}/members/{quote(body.user, safe='')}"
    return model_response(_member(members, body.user), 201, version=members.list_version, location=location)


@router.patch(
    "/{list_id:segment}/members/{member:path}",
    response_model=Member,
    responses=problem_responses(409, 412, 413),
    summary="Change a member's role; role `owner` hands the list over (owner only)",
)
async def change_member(
    list_id: ListId,
    member: MemberUser,
    body: MemberPatch,
    user: CurrentUser,
    actor: ListProxy,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    cmd = SetMemberRole(caller=user, expected_version=if_match_version(if_match), user=member, role=body.role)
    members = (await actor.set_member_role(cmd)).unwrap()
    owner = members.members[0].user
    resources.shared.owners.record(list_id, owner)
    # Every role the change may have moved (on a handover, the old owner's too), as the actor now has them.
    changed = [m for m in members.members if m.user in {member, user}]
    await asyncio.gather(
        *(_index(resources, m.user, ListChange(list_id=list_id, role=m.role)) for m in changed)
    )
    return model_response(_member(members, member), version=members.list_version)


@router.delete(
    "/{list_id:segment}/members/{member:path}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(409, 412),
    summary="Remove a member (owner), or leave the list (yourself; the owner hands it over first)",
)
async def remove_member(
    list_id: ListId,
    member: MemberUser,
    user: CurrentUser,
    actor: ListProxy,
    resources: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    cmd = RemoveMember(caller=user, expected_version=if_match_version(if_match), user=member)
    (await actor.remove_member(cmd)).unwrap()
    (await resources.owner_index(member).remove_list(ListChange(list_id=list_id))).unwrap()
    return Response(status_code=204)


async def _index(resources: Resources, user: str, change: ListChange) -> None:
    (await resources.owner_index(user).add_list(change)).unwrap()
