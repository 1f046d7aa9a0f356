"""`POST /v1/batch`: up to 100 commands in one request, as Todoist's sync API takes them, so an offline
client syncs in one round trip. Each command stands on its own (its own status; a failure rolls back no
other), `uuid` makes it idempotent (results kept like Idempotency-Key records), `temp_id` names what it
creates for the commands after it. Consecutive commands on one list apply in one actor turn.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from api.deps import CurrentUser, Resources, ResourcesDep
from api.middleware.idempotency import IdempotencyStore, Replay, fingerprint
from api.openapi import problem_responses
from api.problems import ApiProblem, Problem, RateLimited, domain_problem, problem_body
from api.process.sidecar_link import SidecarError
from api.responses import model_response
from api.routes.batch_commands import (
    BatchRequest,
    BatchResponse,
    CommandResult,
    ItemAdd,
    ItemMove,
    ItemReorder,
    ItemUpdate,
    ListAdd,
    ListDelete,
    ListUpdate,
)
from api.routes.lists import create_owned_list, delete_owned_list, new_list_id
from api.schemas import set_fields
from todo_actors.batch import runs
from todo_actors.commands import (
    AddStep,
    AddTodo,
    ApplyMany,
    CompleteTodo,
    CreateList,
    DeleteList,
    DeleteTodo,
    ReopenTodo,
    ReorderTodos,
    Step,
    StepOf,
    UpdateList,
    UpdateTodo,
)
from todo_actors.errors import InvalidInput, TodoError
from todo_actors.interface import StepResult

__all__ = ["router"]

log = logging.getLogger("api.routes.batch")

router = APIRouter(tags=["batch"], responses=problem_responses(400, 401, 413, 422, 429, 502, 503))

_INSTANCE = "/v1/batch"


@dataclass
class _Plan:
    """Commands to apply, in order: a list key (steps of one list's turn) or None (a turn of its own)."""

    keys: list[str | None] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    steps: list[Step | None] = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)  # command index -> the list or item it creates/deletes


@router.post(
    "/v1/batch",
    response_model=BatchResponse,
    summary="Apply up to 100 commands in order, each on its own, with temporary ids",
)
async def batch(body: BatchRequest, request: Request, user: CurrentUser, resources: ResourcesDep) -> Response:
    """Each command answers on its own `status` (as its single-call route would) with the `item` or
    `list` it left or a problem `error`; one failing rolls back no other. `temp_id` names what a
    `list_add`/`item_add` creates for the `list_id`, `id`, `parent_id` and `ids` of later commands. A
    `uuid` seen before (per user, kept as long as Idempotency-Key records) answers its first result with
    `replayed: true` and is not applied again; with a different command it answers 422. Consecutive
    commands on one list apply in one actor turn; the batch costs one rate-limit token per turn."""
    commands = body.commands
    # A batch costs what it asks of the actors: one token per actor turn (CurrentUser took the first).
    turns = len(runs([_list_key(c) for c in commands]))
    wait = resources.limiter.take(user, turns - 1) if turns > 1 else 0
    if wait:
        raise RateLimited(wait)
    store = resources.idempotency
    prints = [_print(c) for c in commands]
    results: list[CommandResult | None] = [None] * len(commands)
    first: dict[str, int] = {}
    for n, c in enumerate(commands):
        first.setdefault(c.uuid, n)
    claimed = await _claim(store, user, commands, prints, sorted(first.values()), results)
    mapping: dict[str, str] = {}
    plan = _plan(user, commands, first, results, mapping)
    done: set[int] = set()
    try:
        for run in runs(plan.keys):
            await _apply(request, resources, user, commands, plan, run, results)
            done.update(plan.indices[n] for n in run)
    finally:
        await _record(store, user, commands, prints, claimed, done, results)
    for n, c in enumerate(commands):
        if first[c.uuid] != n:  # the same uuid again in this batch: a replay, or a reuse
            results[n] = _repeat(c, prints[n] == prints[first[c.uuid]], results[first[c.uuid]], n)
    answered = [r for r in results if r is not None]
    assert len(answered) == len(commands)
    created = {
        c.temp_id: _created_id(r)
        for c, r in zip(commands, answered, strict=True)
        if isinstance(c, ListAdd | ItemAdd) and c.temp_id is not None and r.status == 201
    }
    return model_response(BatchResponse(results=answered, temp_id_mapping=created))


async def _claim(
    store: IdempotencyStore,
    user: str,
    commands: list[Any],
    prints: list[str],
    indices: list[int],
    results: list[CommandResult | None],
) -> set[int]:
    """Claim every command's uuid (one state call unless some were seen before); replays and misuses
    get their answer now. Returns the claimed ones."""
    outcomes = await store.begin_many(user, [(_key(commands[n].uuid), prints[n]) for n in indices])
    for n, outcome in zip(indices, outcomes, strict=True):
        if isinstance(outcome, ApiProblem):
            error = problem_body(outcome.kind, outcome.status, outcome.title, outcome.detail, instance=_at(n))
            results[n] = _error(commands[n], error)
        elif isinstance(outcome, Replay):
            results[n] = CommandResult.model_validate_json(outcome.body).model_copy(update={"replayed": True})
    return {n for n, o in zip(indices, outcomes, strict=True) if o is None}


async def _record(
    store: IdempotencyStore,
    user: str,
    commands: list[Any],
    prints: list[str],
    claimed: set[int],
    done: set[int],
    results: list[CommandResult | None],
) -> None:
    """Keep the answer of every claimed command that ran (or was refused before running), in one state
    call; free the claims of those a failure stopped, so they can be sent again."""
    finished: list[tuple[str, str, Replay]] = []
    freed: list[str] = []
    for n in sorted(claimed):
        result = results[n]
        key = _key(commands[n].uuid)
        if result is not None and (n in done or result.status < 500):
            reply = Replay(result.status, [], result.model_dump_json(exclude_defaults=True).encode())
            finished.append((key, prints[n], reply))
        else:
            freed.append(key)
    outcomes = await asyncio.gather(
        store.finish_many(user, finished), store.release_many(user, freed), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, SidecarError):
            log.warning("batch: could not record the commands' results: %r", outcome)
        elif isinstance(outcome, BaseException):
            raise outcome


def _plan(
    user: str,
    commands: list[Any],
    first: dict[str, int],
    results: list[CommandResult | None],
    mapping: dict[str, str],
) -> _Plan:
    """Resolve temp ids and build the domain command of every command still to apply. Ids of new lists
    and items are chosen here, so later commands (even in the same actor turn) can name them."""
    plan = _Plan()
    for n, c in enumerate(commands):
        replayed = results[n]
        if replayed is not None:
            if isinstance(c, ListAdd | ItemAdd) and c.temp_id is not None and replayed.status == 201:
                mapping[c.temp_id] = _created_id(replayed)
            continue
        if first[c.uuid] != n:
            continue  # a repeated uuid: answered after the first one
        temp_id = getattr(c, "temp_id", None)
        if temp_id is not None and temp_id in mapping:
            error = InvalidInput.at("temp_id", f"temp_id {temp_id!r} is already used in this batch")
            results[n] = _error(c, domain_problem(error, instance=_at(n)))
            continue
        try:
            key, step, ident = _domain(user, c, mapping)
        except ValidationError as exc:
            error = InvalidInput.from_validation_error(exc)
            results[n] = _error(c, domain_problem(error, instance=_at(n)))
            continue
        if ident is not None:
            plan.ids[n] = ident
            if temp_id is not None:
                mapping[temp_id] = ident
        plan.keys.append(key)
        plan.indices.append(n)
        plan.steps.append(step)
    return plan


def _domain(user: str, c: Any, mapping: dict[str, str]) -> tuple[str | None, Step | None, str | None]:
    """(list key or None for a turn of its own, the step, the id it creates or deletes)."""

    def ref(value: str) -> str:
        return mapping.get(value, value)

    if isinstance(c, ListAdd):
        return None, None, new_list_id(user, f"batch {c.uuid}")
    if isinstance(c, ListDelete):
        return None, None, ref(c.args.id)
    args = c.args
    fields = {k: v for k, v in set_fields(args).items() if k not in ("id", "list_id")}
    if "parent_id" in fields and fields["parent_id"] is not None:
        fields["parent_id"] = ref(fields["parent_id"])
    step: Step
    if isinstance(c, ListUpdate):
        return ref(args.id), StepOf(kind="update_list", cmd=UpdateList(caller=user, **fields)), None
    list_id = ref(args.list_id)
    if isinstance(c, ItemAdd):
        new_id = uuidlib.uuid4().hex
        return list_id, AddStep(new_id=new_id, cmd=AddTodo(caller=user, **fields)), new_id
    if isinstance(c, ItemReorder):
        cmd = ReorderTodos(caller=user, ids=tuple(ref(i) for i in args.ids))
        return list_id, StepOf(kind="reorder", cmd=cmd), None
    item_id = ref(args.id)
    if isinstance(c, ItemUpdate | ItemMove):
        step = StepOf(kind="update", cmd=UpdateTodo(caller=user, id=item_id, **fields))
    else:
        kind = c.type.removeprefix("item_")
        action: type[CompleteTodo | ReopenTodo | DeleteTodo] = _ACTIONS[kind]
        step = StepOf(kind=kind, cmd=action(caller=user, id=item_id))
    return list_id, step, None


async def _apply(
    request: Request,
    resources: Resources,
    user: str,
    commands: list[Any],
    plan: _Plan,
    run: range,
    results: list[CommandResult | None],
) -> None:
    """One actor turn: a run of one list's steps, or a list_add / list_delete of its own."""
    indices = [plan.indices[n] for n in run]
    key = plan.keys[run.start]
    if key is None:
        n = indices[0]
        c = commands[n]
        try:
            if isinstance(c, ListAdd):
                cmd = CreateList(owner=user, **c.args.model_dump())
                summary = await create_owned_list(resources, user, plan.ids[n], cmd)
                results[n] = CommandResult(uuid=c.uuid, status=201, list=summary)
            else:
                await delete_owned_list(request.app, resources, plan.ids[n], DeleteList(caller=user))
                results[n] = CommandResult(uuid=c.uuid, status=204)
        except ValidationError as exc:
            results[n] = _error(c, domain_problem(InvalidInput.from_validation_error(exc), instance=_at(n)))
        except TodoError as exc:
            results[n] = _error(c, domain_problem(exc, instance=_at(n)))
        return
    steps = tuple(s for s in (plan.steps[n] for n in run) if s is not None)
    many = (await resources.list_actor(key).batch(ApplyMany(steps=steps))).unwrap()
    for n, step, answer in zip(indices, steps, many.results, strict=True):
        results[n] = _step_answer(commands[n], step, answer, n)


_ACTIONS: dict[str, type[CompleteTodo | ReopenTodo | DeleteTodo]] = {
    "complete": CompleteTodo,
    "reopen": ReopenTodo,
    "delete": DeleteTodo,
}


def _step_answer(c: Any, step: Step, answer: StepResult, n: int) -> CommandResult:
    if answer.error is not None:
        return _error(c, domain_problem(TodoError.from_info(answer.error), instance=_at(n)))
    if step.kind == "add":
        return CommandResult(uuid=c.uuid, status=201, item=answer.item)
    if step.kind == "delete":
        return CommandResult(uuid=c.uuid, status=204)
    return CommandResult(uuid=c.uuid, status=200, item=answer.item, list=answer.list)


def _repeat(c: Any, same: bool, first: CommandResult | None, n: int) -> CommandResult:
    if same and first is not None:
        return first.model_copy(update={"replayed": True})
    error = problem_body(
        "idempotency-key-reused",
        422,
        "Command uuid reused with a different command",
        "this uuid was already used for a different command; use a new uuid",
        instance=_at(n),
    )
    return _error(c, error)


def _error(c: Any, problem: dict[str, Any]) -> CommandResult:
    return CommandResult(uuid=c.uuid, status=problem["status"], error=Problem.model_validate(problem))


def _created_id(result: CommandResult) -> str:
    created = result.item or result.list
    assert created is not None
    return created.id


def _list_key(c: Any) -> str | None:
    if isinstance(c, ListAdd | ListDelete):
        return None
    return str(c.args.id if isinstance(c, ListUpdate) else c.args.list_id)


def _print(c: Any) -> str:
    return fingerprint("BATCH", _INSTANCE, c.type, c.model_dump_json(exclude={"uuid"}).encode())


def _key(command_uuid: str) -> str:
    # A space: no Idempotency-Key header can take it, so a command's record never meets a request's.
    return f"batch {command_uuid}"


def _at(n: int) -> str:
    return f"{_INSTANCE}#/commands/{n}"
