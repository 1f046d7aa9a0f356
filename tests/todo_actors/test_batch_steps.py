"""Batches in the pure domain: runs keep the order, `apply_many` applies each step on its own and folds
their effects, and the steps cross the actor boundary as data."""

from __future__ import annotations

import datetime as dt

from todo_actors.batch import runs, step_results, transition_of
from todo_actors.change import apply_many
from todo_actors.commands import AddStep, AddTodo, ApplyMany, CompleteTodo, CreateList, DeleteTodo, StepOf
from todo_actors.due import Due, Reminder
from todo_actors.errors import NotFound
from todo_actors.transitions import DEFAULT_LIMITS, create_list

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_runs_group_neighbours_only() -> None:
    keys = ["a", "a", None, "a", "b", "b", None, None, "a"]
    assert [list(r) for r in runs(keys)] == [[0, 1], [2], [3], [4, 5], [6], [7], [8]]
    assert runs([]) == []


def test_apply_many_applies_each_step_on_its_own_and_folds_the_effects() -> None:
    state = create_list(None, CreateList(owner="ann", title="home"), "home", T0).state
    due = Due(date=dt.date(2026, 2, 1))
    steps = ApplyMany(
        steps=(
            AddStep(
                new_id="a",
                cmd=AddTodo(caller="ann", title="a", due=due, reminders=(Reminder(before_due="PT5M"),)),
            ),
            StepOf(kind="complete", cmd=CompleteTodo(caller="ann", id="missing")),
            AddStep(new_id="b", cmd=AddTodo(caller="ann", title="b", parent_id="a")),
            StepOf(kind="delete", cmd=DeleteTodo(caller="ann", id="a")),
            StepOf(kind="complete", cmd=CompleteTodo(caller="bob", id="b")),
        )
    ).steps
    many = apply_many(state, [transition_of(s, DEFAULT_LIMITS) for s in steps], T0)
    assert [type(r).__name__ for r in many.results] == [
        "Outcome",
        "NotFound",
        "Outcome",
        "Outcome",
        "NotFound",
    ]
    assert many.state is not None and many.state.items == {}  # a's delete took its subtask b too
    assert many.state.version == state.version + 3
    assert [e.type for e in many.events] == ["created", "created", "deleted", "deleted"]
    assert not many.reminders.to_register  # a's reminder registered, then removed: nothing left to arm
    answers = step_results(steps, many)
    assert answers[0].item is not None and answers[0].item.id == "a"
    assert answers[1].error is not None and answers[1].error.kind == "not_found"


def test_a_missing_list_fails_every_step_and_changes_nothing() -> None:
    step = AddStep(new_id="a", cmd=AddTodo(caller="ann", title="a"))
    many = apply_many(None, [transition_of(step, DEFAULT_LIMITS)] * 2, T0)
    assert many.state is None and not many.changed and all(isinstance(r, NotFound) for r in many.results)


def test_steps_round_trip_as_json_with_their_kind() -> None:
    batch = ApplyMany(
        steps=(
            StepOf(kind="complete", cmd=CompleteTodo(id="x")),
            StepOf(kind="delete", cmd=DeleteTodo(id="x")),
        )
    )
    again = ApplyMany.model_validate_json(batch.model_dump_json())
    assert [type(s.cmd) for s in again.steps] == [CompleteTodo, DeleteTodo]
