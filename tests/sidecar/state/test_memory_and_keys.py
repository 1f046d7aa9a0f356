"""state.in-memory specifics (TTL, first-write deletes) and daprd's key naming."""

from __future__ import annotations

import pytest

from sidecar.clock import ManualClock
from sidecar.errors import DaprError
from sidecar.state import (
    DeleteOp,
    ETagMismatch,
    InMemoryStateStore,
    SetOp,
    StateError,
    actor_state_key,
    check_options,
    original_key,
    state_key,
)
from sidecar.state.keys import normalize_key_prefix


async def test_in_memory_ttl_and_lenient_negative_ttl() -> None:
    clock = ManualClock()
    store = InMemoryStateStore("mem", clock)
    await store.set(SetOp("k", b"1", metadata={"ttlInSeconds": "2"}))
    await store.set(SetOp("forever", b"2", metadata={"ttlInSeconds": "-5"}))
    item = await store.get("k")
    assert item is not None and "ttlExpireTime" in item.metadata
    clock.advance(3)
    assert await store.get("k") is None
    assert await store.get("forever") is not None
    with pytest.raises(StateError):
        await store.set(SetOp("k", b"1", metadata={"ttlInSeconds": "x"}))


async def test_in_memory_first_write_delete_and_etag_rules() -> None:
    store = InMemoryStateStore("mem", ManualClock())
    await store.delete(DeleteOp("missing", concurrency="first-write"))
    await store.set(SetOp("k", b"1"))
    with pytest.raises(ETagMismatch, match="item already exists"):
        await store.delete(DeleteOp("k", concurrency="first-write"))
    with pytest.raises(ETagMismatch, match="state not exist"):
        await store.set(SetOp("missing", b"1", etag="e"))
    item = await store.get("k")
    assert item is not None and item.etag
    await store.delete(DeleteOp("k", etag=item.etag, concurrency="first-write"))
    assert await store.get("k") is None


def test_state_key_follows_the_key_prefix_strategy() -> None:
    clock = ManualClock()
    cases = {
        "appid": "myapp||k",
        "namespace": "myapp||k",
        "name": "store1||k",
        "none": "k",
        "shared": "shared||k",
    }
    for strategy, expected in cases.items():
        store = InMemoryStateStore("store1", clock, key_prefix=strategy)
        assert state_key("myapp", store, "k") == expected
        assert original_key(expected) in ("k", expected)
    assert state_key("", InMemoryStateStore("s", clock), "k") == "k"
    assert normalize_key_prefix("MyPrefix") == "myprefix"
    assert normalize_key_prefix(None) == "appid"


def test_keys_with_the_separator_are_malformed() -> None:
    store = InMemoryStateStore("s", ManualClock())
    with pytest.raises(DaprError) as caught:
        state_key("app", store, "a||b")
    assert (caught.value.code, caught.value.http_status) == ("ERR_MALFORMED_REQUEST", 400)
    with pytest.raises(DaprError):
        normalize_key_prefix("a||b")


def test_actor_and_original_keys() -> None:
    assert actor_state_key("app", "TodoList", "l1", "state") == "app||TodoList||l1||state"
    assert original_key("app||k") == "k"
    assert original_key("plain") == "plain"


def test_request_options() -> None:
    assert check_options(None, None) == "last-write"
    assert check_options("first-write", "strong") == "first-write"
    with pytest.raises(StateError, match="unrecognized concurrency model 'x'"):
        check_options("x", None)
    with pytest.raises(StateError, match="unrecognized consistency model 'y'"):
        check_options(None, "y")


def test_exported_members_exist() -> None:
    import sidecar.components
    import sidecar.secrets
    import sidecar.state

    for module in (sidecar.state, sidecar.secrets, sidecar.components):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
