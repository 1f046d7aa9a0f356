"""Stateful property test: state.sqlite and state.in-memory against a dict model of daprd's semantics
(set/get/delete, ETags, first-write, atomic transactions)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from sidecar.clock import ManualClock
from sidecar.state import (
    DeleteOp,
    ETagMismatch,
    InMemoryStateStore,
    SetOp,
    SqliteOptions,
    SqliteStateStore,
    StateStore,
)

KEYS = ["a", "b", "c||d", "ключ"]
keys = st.sampled_from(KEYS)
values = st.binary(max_size=12) | st.sampled_from([b'{"x":1}', b"\xff\x00", b""])
etag_choices = st.sampled_from(["none", "current", "stale", "bogus"])
concurrencies = st.sampled_from(["last-write", "first-write"])


class _New:
    """The ETag a write inside a pending transaction will get: equal to nothing the client knows."""


@dataclass(frozen=True)
class Op:
    kind: str
    key: str
    value: bytes
    etag_choice: str
    concurrency: str


ops = st.builds(Op, st.sampled_from(["set", "delete"]), keys, values, etag_choices, concurrencies)


class StoreModel(RuleBasedStateMachine):
    """Drives one store; `make_store` and `delete_checks_first_write` are set per store type."""

    make_store: Callable[[], StateStore]
    delete_checks_first_write: bool

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = self.make_store()
        self.model: dict[str, tuple[bytes, str]] = {}
        self.seen_etags: dict[str, list[str]] = {k: [] for k in KEYS}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def etag(self, key: str, choice: str) -> str | None:
        if choice == "current":
            return self.model[key][1] if key in self.model else "00000000-0000-0000-0000-000000000000"
        if choice == "stale":
            old = [e for e in self.seen_etags[key] if key not in self.model or e != self.model[key][1]]
            return old[-1] if old else "stale"
        return "bogus" if choice == "bogus" else None

    def build(self, op: Op) -> SetOp | DeleteOp:
        etag = self.etag(op.key, op.etag_choice)
        if op.kind == "set":
            return SetOp(op.key, op.value, etag, concurrency=op.concurrency)  # type: ignore[arg-type]
        return DeleteOp(op.key, etag, concurrency=op.concurrency)  # type: ignore[arg-type]

    def allowed(self, op: SetOp | DeleteOp, current: tuple[bytes, Any] | None) -> bool:
        if op.etag:
            return current is not None and current[1] == op.etag
        if op.concurrency == "first-write" and current is not None:
            return isinstance(op, DeleteOp) and not self.delete_checks_first_write
        return True

    def refresh(self, key: str, old_etag: str | None) -> None:
        item = self.run(self.store.get(key))
        if key not in self.model:
            assert item is None
            return
        assert item is not None and item.etag
        assert item.etag != old_etag and item.etag not in self.seen_etags[key], "ETag reused"
        self.seen_etags[key].append(item.etag)
        self.model[key] = (self.model[key][0], item.etag)

    @rule(op=ops)
    def single(self, op: Op) -> None:
        request = self.build(op)
        current = self.model.get(op.key)
        expected_ok = self.allowed(request, current)
        try:
            if isinstance(request, SetOp):
                self.run(self.store.set(request))
            else:
                self.run(self.store.delete(request))
        except ETagMismatch:
            assert not expected_ok, f"{request} refused"
            return
        assert expected_ok, f"{request} accepted against {current}"
        if isinstance(request, SetOp):
            self.model[op.key] = (op.value, "")
        else:
            self.model.pop(op.key, None)
        self.refresh(op.key, current[1] if current else None)

    @rule(batch=st.lists(ops, min_size=1, max_size=4))
    def transaction(self, batch: list[Op]) -> None:
        requests = [self.build(op) for op in batch]
        scratch: dict[str, tuple[bytes, Any]] = dict(self.model)
        expected_ok = True
        for request in requests:
            if not self.allowed(request, scratch.get(request.key)):
                expected_ok = False
                break
            if isinstance(request, SetOp):
                scratch[request.key] = (request.value, _New())
            else:
                scratch.pop(request.key, None)
        before = dict(self.model)
        try:
            self.run(self.store.transact(requests))
        except ETagMismatch:
            assert not expected_ok, "transaction refused"
            return
        assert expected_ok, "transaction accepted"
        self.model = {k: (v[0], v[1] if isinstance(v[1], str) else "") for k, v in scratch.items()}
        for key in {r.key for r in requests}:
            self.refresh(key, before[key][1] if key in before else None)

    @invariant()
    def matches_model(self) -> None:
        found = self.run(self.store.bulk_get(KEYS))
        assert [k for k, _ in found] == KEYS
        for key, item in found:
            if key in self.model:
                assert item is not None, key
                assert (item.value, item.etag) == self.model[key]
            else:
                assert item is None, key


_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_sqlite_store_matches_model(tmp_path: Path) -> None:
    counter = itertools.count()

    class SqliteModel(StoreModel):
        delete_checks_first_write = False  # components-contrib's sqlite ignores it on deletes

        @staticmethod
        def make_store() -> StateStore:
            path = tmp_path / f"db{next(counter)}.db"
            # NORMAL only to keep the run fast; durability is tested on its own.
            options = SqliteOptions(path=str(path), synchronous="NORMAL")
            return SqliteStateStore("statestore", options, ManualClock())

    run_state_machine_as_test(SqliteModel, settings=_SETTINGS)


def test_in_memory_store_matches_model() -> None:
    class MemoryModel(StoreModel):
        delete_checks_first_write = True  # components-contrib's in-memory store checks it

        @staticmethod
        def make_store() -> StateStore:
            return InMemoryStateStore("statestore", ManualClock())

    run_state_machine_as_test(MemoryModel, settings=settings(_SETTINGS, max_examples=100))
