"""`HeapPolicy`: survivors of a full collection are frozen (later collections skip them), and a sweep
reclaims a cycle that died while frozen; uninstalling restores CPython's default behaviour."""

from __future__ import annotations

import gc
import weakref

from api.process.heap import HeapPolicy


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_a_fast_full_collection_freezes_nothing() -> None:
    heap = HeapPolicy(sweep_seconds=600, freeze_after_ms=60_000)
    heap.install()
    try:
        node = Node()
        ref = weakref.ref(node)
        gc.collect()  # fast here: nothing is frozen, so the dead cycle is found next time
        del node
        gc.collect()
        assert ref() is None
    finally:
        heap.uninstall()


def test_frozen_cycles_wait_for_a_sweep() -> None:
    heap = HeapPolicy(sweep_seconds=600, freeze_after_ms=0)  # a test process collects fast
    heap.install()
    try:
        node = Node()
        ref = weakref.ref(node)
        gc.collect()  # a full collection: `node` survives it and is frozen
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert ref() is not None  # frozen: plain collections no longer scan it
        assert heap.sweep() >= 1
        assert ref() is None
    finally:
        heap.uninstall()
    assert gc.get_freeze_count() == 0 and heap.installed is False
    other = Node()
    ref = weakref.ref(other)
    gc.collect()
    del other
    gc.collect()
    assert ref() is None  # default behaviour again
