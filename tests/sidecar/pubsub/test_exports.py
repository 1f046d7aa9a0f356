"""The pub/sub package's public surface: what the sidecar imports exists, and every module documents
why it exists and declares `__all__`."""

from __future__ import annotations

import importlib
import pkgutil

import sidecar.pubsub
from sidecar.http import publish_routes


def test_package_exports_resolve() -> None:
    assert set(sidecar.pubsub.__all__) >= {"BrokerSpec", "BulkEntry", "PubSubEngine"}
    for name in sidecar.pubsub.__all__:
        assert getattr(sidecar.pubsub, name) is not None


def test_every_module_has_a_docstring_and_all() -> None:
    modules = [publish_routes] + [
        importlib.import_module(f"sidecar.pubsub.{info.name}")
        for info in pkgutil.iter_modules(sidecar.pubsub.__path__)
    ]
    assert len(modules) >= 9
    for module in modules:
        assert module.__doc__ and module.__doc__.strip(), module.__name__
        exported = module.__all__
        assert all(hasattr(module, name) for name in exported), module.__name__
