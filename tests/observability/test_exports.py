"""The observability modules say why they exist and export what `__all__` names."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "api.middleware.tracing",
        "api.process.logs",
        "api.middleware.metrics",
        "api.middleware.span_export",
        "api.channel.workflow_outcomes",
    ],
)
def test_exports_exist_and_modules_say_why(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__doc__ and mod.__doc__.strip()
    assert mod.__all__
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names missing {name!r}"
