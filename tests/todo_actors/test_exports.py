"""The package's public surface: `__all__` lists exactly what it exports, and every module says why."""

from __future__ import annotations

import importlib
import pkgutil

import todo_actors


def test_all_names_resolve_and_nothing_public_is_unlisted() -> None:
    for name in todo_actors.__all__:
        assert hasattr(todo_actors, name), name
    public = {
        name
        for name, value in vars(todo_actors).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("todo_actors")
    }
    assert public <= set(todo_actors.__all__)
    assert len(set(todo_actors.__all__)) == len(todo_actors.__all__)


def test_every_module_has_a_docstring_and_all() -> None:
    modules = [m.name for m in pkgutil.iter_modules(todo_actors.__path__, "todo_actors.")]
    assert {"todo_actors.model", "todo_actors.serializer"} <= set(modules)
    for name in modules:
        module = importlib.import_module(name)
        assert module.__doc__ and module.__doc__.strip(), name
        assert isinstance(getattr(module, "__all__", None), list), name
        for exported in module.__all__:
            assert hasattr(module, exported), f"{name}.{exported}"
