"""State stores behind the state and actor-state APIs: the protocol, `state.sqlite`, `state.in-memory`
and daprd's key naming."""

from __future__ import annotations

from sidecar.state.keys import actor_state_key, check_key, original_key, state_key
from sidecar.state.memory import InMemoryStateStore
from sidecar.state.sqlite import SqliteOptions, SqliteStateStore
from sidecar.state.store import (
    DeleteOp,
    ETagInvalid,
    ETagMismatch,
    SetOp,
    StateError,
    StateItem,
    StateStore,
    api_error,
    check_options,
    parse_ttl,
    query_unsupported,
    run_bulk,
)

__all__ = [
    "DeleteOp",
    "ETagInvalid",
    "ETagMismatch",
    "InMemoryStateStore",
    "SetOp",
    "SqliteOptions",
    "SqliteStateStore",
    "StateError",
    "StateItem",
    "StateStore",
    "actor_state_key",
    "api_error",
    "check_key",
    "check_options",
    "original_key",
    "parse_ttl",
    "query_unsupported",
    "run_bulk",
    "state_key",
]
