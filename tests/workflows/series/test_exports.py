"""The workflows package's public surface: `__all__` lists what it exports, every module says why, and
completion events from the lists are recognised (pure parts, no runtime)."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import UTC, datetime

import workflows
from workflows.completion import completion_of
from workflows.runtime import series_id_of, series_instance_id


def test_all_names_resolve_and_every_module_has_a_docstring_and_all() -> None:
    for name in workflows.__all__:
        assert hasattr(workflows, name), name
    assert len(set(workflows.__all__)) == len(workflows.__all__)
    modules = [m.name for m in pkgutil.iter_modules(workflows.__path__, "workflows.")]
    assert {"workflows.series", "workflows.activities", "workflows.runtime"} <= set(modules)
    for name in modules:
        module = importlib.import_module(name)
        assert module.__doc__ and module.__doc__.strip(), name
        assert isinstance(getattr(module, "__all__", None), list), name
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.{exported}"


def test_instance_ids() -> None:
    assert series_instance_id("abc") == "series-abc"
    assert series_id_of("series-abc") == "abc"
    assert series_id_of("other-abc") is None and series_id_of("series-") is None
    assert series_id_of("series-a/b") is None


def test_completion_of_a_task_event() -> None:
    done = datetime(2027, 3, 1, 10, tzinfo=UTC)
    item = {"id": "i1", "series_id": "s1", "occurrence": 4, "completed_at": done.isoformat()}
    found = completion_of({"type": "completed", "list_id": "l1", "item": item})
    assert found is not None
    series_id, event = found
    assert (series_id, event.index, event.completed_at, event.list_id, event.item_id) == (
        "s1",
        4,
        done,
        "l1",
        "i1",
    )
    assert completion_of({"type": "updated", "list_id": "l1", "item": item}) is None
    assert completion_of({"type": "completed", "list_id": "l1", "item": {**item, "series_id": None}}) is None
    assert completion_of({"type": "completed", "list_id": "l1", "item": {**item, "occurrence": "x"}}) is None
