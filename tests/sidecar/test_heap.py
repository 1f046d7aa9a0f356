"""The sidecar's collection policy: a slow full collection freezes its survivors, and a periodic sweep
reclaims a cycle that died frozen."""

from __future__ import annotations

import asyncio
import gc
import weakref

from sidecar import heap


class Node:
    def __init__(self) -> None:
        self.me = self


async def test_survivors_are_frozen_and_swept() -> None:
    heap.freeze_survivors(slower_than=0.0)  # this small heap collects fast: freeze anyway
    sweeps = asyncio.ensure_future(heap.sweep_periodically(0.05))
    try:
        node = Node()
        ref = weakref.ref(node)
        gc.collect()
        del node
        gc.collect()
        assert ref() is not None  # frozen by the full collection it survived
        for _ in range(100):
            if ref() is None:
                break
            await asyncio.sleep(0.02)
        assert ref() is None  # the sweep collected it
    finally:
        sweeps.cancel()
        gc.callbacks.remove(heap._after_collection)
        gc.unfreeze()
