"""Batches of changes (`POST /v1/batch`): which commands share one actor turn, and how one list's steps
become transitions and per-step answers. Pure: the actor and the API route only move data through here.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from todo_actors import transitions as tr
from todo_actors.change import Many, Transition
from todo_actors.commands import (
    AddStep,
    CompleteTodo,
    DeleteTodo,
    ReopenTodo,
    ReorderTodos,
    Step,
    UpdateList,
    UpdateTodo,
)
from todo_actors.errors import TodoError
from todo_actors.interface import StepResult

__all__ = ["runs", "step_results", "transition_of"]

# Steps whose answer is the list (a summary) rather than one item.
_LIST_STEPS = frozenset({"update_list", "reorder"})


def runs(keys: Sequence[Hashable | None]) -> list[range]:
    """Group consecutive commands with the same key (a list id) into one run each, in order; a None key
    (a command that needs a turn of its own) is a run by itself. Only neighbours are grouped, so the
    commands still apply in the order given."""
    out: list[range] = []
    start = 0
    for n in range(1, len(keys) + 1):
        if n == len(keys) or keys[n] is None or keys[n] != keys[start]:
            out.append(range(start, n))
            start = n
    return out


def transition_of(step: Step, limits: tr.Limits) -> Transition:
    """The transition that the single-call actor method for this step would run."""
    if isinstance(step, AddStep):
        add, new_id = step.cmd, step.new_id
        return lambda state, now: tr.add_todo(state, add, now, new_id, limits)
    cmd = step.cmd
    if isinstance(cmd, UpdateList):
        return lambda state, now: tr.update_list(state, cmd, now)
    if isinstance(cmd, UpdateTodo):
        return lambda state, now: tr.update_todo(state, cmd, now, limits)
    if isinstance(cmd, CompleteTodo):
        return lambda state, now: tr.complete_todo(state, cmd, now)
    if isinstance(cmd, ReopenTodo):
        return lambda state, now: tr.reopen_todo(state, cmd, now)
    if isinstance(cmd, DeleteTodo):
        return lambda state, now: tr.delete_todo(state, cmd, now, limits)
    if isinstance(cmd, ReorderTodos):
        return lambda state, now: tr.reorder(state, cmd, now)
    raise TypeError(f"no transition for {type(cmd).__name__}")  # StepOf validates kind against cmd


def step_results(steps: Sequence[Step], many: Many) -> list[StepResult]:
    """Each step's answer: its error, or the item (the list, for list-wide steps) it left."""
    out = []
    for step, result in zip(steps, many.results, strict=True):
        if isinstance(result, TodoError):
            out.append(StepResult(error=result.info()))
        elif step.kind in _LIST_STEPS:
            out.append(StepResult(list=result.state.summary()))
        else:
            out.append(StepResult(item=result.item))
    return out
