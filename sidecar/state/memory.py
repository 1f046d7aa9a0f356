"""`state.in-memory`: a process-local state store with daprd's ETag, first-write, TTL and transaction rules.

Follows components-contrib `state/in-memory`: a new UUID ETag per write, an ETag given for a missing key is a
mismatch, and `first-write` without an ETag fails on an existing key, for deletes too. Expired items are
invisible at once and swept at most once a second on writes. A lock makes it safe across event loops.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sidecar.clock import Clock
from sidecar.state.store import (
    DeleteOp,
    ETagMismatch,
    OutboxRecord,
    SetOp,
    StateItem,
    parse_ttl,
    ttl_metadata,
)

__all__ = ["InMemoryStateStore"]

_SWEEP_INTERVAL = 1.0


@dataclass(frozen=True)
class _Entry:
    value: bytes
    etag: str
    expires: float | None

    def alive(self, now: float) -> bool:
        return self.expires is None or now <= self.expires


class InMemoryStateStore:
    """The `state.in-memory` component: nothing survives a restart."""

    component_type = "state.in-memory"
    features = frozenset({"ETAG", "TRANSACTIONAL", "TTL", "DELETE_WITH_PREFIX", "KEYS_LIKE"})

    def __init__(self, name: str, clock: Clock, *, key_prefix: str = "appid") -> None:
        self.name = name
        self.key_prefix = key_prefix
        self._clock = clock
        self._items: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        # The outbox lives beside the items under the same lock: lost with them on a restart, as it should.
        self._outbox: dict[int, OutboxRecord] = {}
        self._outbox_seq = 0

    async def get(self, key: str) -> StateItem | None:
        now = self._clock.now()
        with self._lock:
            return self._item(key, now)

    async def bulk_get(self, keys: Sequence[str]) -> list[tuple[str, StateItem | None]]:
        now = self._clock.now()
        with self._lock:
            return [(key, self._item(key, now)) for key in keys]

    async def set(self, op: SetOp) -> None:
        await self.transact([op])

    async def delete(self, op: DeleteOp) -> None:
        await self.transact([op])

    async def transact(self, ops: Sequence[SetOp | DeleteOp], events: Sequence[OutboxRecord] = ()) -> None:
        ttls = [parse_ttl(op.metadata, lenient=True) if isinstance(op, SetOp) else None for op in ops]
        now = self._clock.now()
        with self._lock:
            self._sweep(now)
            # Ops apply in order to a scratch view, so a failing op leaves the store untouched.
            changes: dict[str, _Entry | None] = {}
            for op, ttl in zip(ops, ttls, strict=True):
                current = changes[op.key] if op.key in changes else self._live(op.key, now)
                _check_etag(op, current)
                if isinstance(op, SetOp):
                    expires = now + ttl if ttl else None
                    changes[op.key] = _Entry(bytes(op.value), str(uuid.uuid4()), expires)
                else:
                    changes[op.key] = None
            for key, entry in changes.items():
                if entry is None:
                    self._items.pop(key, None)
                else:
                    self._items[key] = entry
            for event in events:
                self._outbox_seq += 1
                self._outbox[self._outbox_seq] = replace(event, seq=self._outbox_seq)

    def enable_outbox(self) -> None:
        """Nothing to prepare: the outbox is a dict."""

    async def outbox_pending(self, limit: int) -> list[OutboxRecord]:
        with self._lock:
            return list(itertools.islice(self._outbox.values(), limit))

    async def outbox_remove(self, seq: int) -> None:
        with self._lock:
            self._outbox.pop(seq, None)

    async def outbox_count(self) -> int:
        with self._lock:
            return len(self._outbox)

    async def close(self) -> None:
        with self._lock:
            self._items.clear()
            self._outbox.clear()

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._items.get(key)
        if entry is not None and not entry.alive(now):
            del self._items[key]
            return None
        return entry

    def _item(self, key: str, now: float) -> StateItem | None:
        entry = self._live(key, now)
        if entry is None:
            return None
        return StateItem(key, entry.value, entry.etag, ttl_metadata(entry.expires))

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for key in [k for k, e in self._items.items() if not e.alive(now)]:
            del self._items[key]


def _check_etag(op: SetOp | DeleteOp, current: _Entry | None) -> None:
    if op.etag:
        if current is None:
            raise ETagMismatch(f"state not exist or expired for key={op.key}")
        if current.etag != op.etag:
            raise ETagMismatch(
                f"state etag not match for key={op.key}: current={current.etag}, expect={op.etag}"
            )
    elif op.concurrency == "first-write" and current is not None:
        raise ETagMismatch("item already exists and no etag was passed")
