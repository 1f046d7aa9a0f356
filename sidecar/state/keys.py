"""Keys as daprd writes them into a state store, so data written by either sidecar reads back in the other.

Plain state is `<prefix>||<key>` (the component's `keyPrefix` strategy, `appid` by default); actor state is
`<appId>||<ActorType>||<actorId>||<key>` whatever the strategy.
"""

from __future__ import annotations

from sidecar.errors import error
from sidecar.state.store import StateStore

__all__ = [
    "SEPARATOR",
    "actor_state_key",
    "check_key",
    "normalize_key_prefix",
    "original_key",
    "state_key",
]

SEPARATOR = "||"


def check_key(key: str, store: str = "") -> None:
    """Reject a key (or key prefix) containing `||` with daprd's 400 ERR_MALFORMED_REQUEST; a key of
    `store` with daprd's details (BadRequest, ResourceInfo, ErrorInfo `DAPR_STATE_ILLEGAL_KEY`)."""
    if SEPARATOR in key:
        message = f"input key/keyPrefix '{key}' can't contain '{SEPARATOR}'"
        if not store:
            raise error("ERR_MALFORMED_REQUEST", message)
        raise error(
            "ERR_MALFORMED_REQUEST",
            message,
            reason="DAPR_STATE_ILLEGAL_KEY",
            resource=store,
            resource_type="state",
            field=key,
        )


def normalize_key_prefix(value: str | None) -> str:
    """The `keyPrefix` strategy of a component: lower-cased like daprd (custom prefixes too)."""
    strategy = (value or "appid").lower()
    check_key(strategy)
    return strategy


def state_key(app_id: str, store: StateStore, key: str) -> str:
    """The stored key for plain state `key` of `app_id` in `store` (daprd `GetModifiedStateKey`).

    The `namespace` strategy falls back to `appid`: the embedded sidecar runs in no namespace.
    """
    check_key(key, store.name)
    strategy = store.key_prefix
    if strategy == "none":
        return key
    if strategy == "name":
        return f"{store.name}{SEPARATOR}{key}"
    if strategy in ("appid", "namespace"):
        return f"{app_id}{SEPARATOR}{key}" if app_id else key
    return f"{strategy}{SEPARATOR}{key}"


def original_key(stored_key: str) -> str:
    """The key the app used, from a prefixed stored key (daprd `GetOriginalStateKey`)."""
    parts = stored_key.split(SEPARATOR, 2)
    return parts[1] if len(parts) > 1 else stored_key


def actor_state_key(app_id: str, actor_type: str, actor_id: str, key: str) -> str:
    """The stored key of one actor's state entry."""
    return SEPARATOR.join((app_id, actor_type, actor_id, key))
