"""daprd's distributed lock API (`TryLockAlpha1`, `UnlockAlpha1`) over the embedded lock store.

`lock.embedded.in-memory` is this sidecar's own type (daprd has none by that name; components-contrib has
`lock.redis`): one sidecar serves one host, so a lock held in the sidecar's memory excludes every process of
the app as a Redis lock would. Locks expire by the sidecar's clock (a dev clock included) and, unlike Redis
locks, do not outlive the sidecar: after a restart every lock is free. Semantics are `lock.redis`'s: a held
lock is refused to everyone (its owner included) until it is unlocked or expires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from sidecar.clock import Clock
from sidecar.errors import DaprError, ErrorKind

__all__ = ["LOCK_TYPE", "SUCCESS", "LockAPI", "LockStore"]

LOCK_TYPE = "lock.embedded.in-memory"

# runtime.v1.UnlockResponse.Status
SUCCESS, LOCK_DOES_NOT_EXIST, LOCK_BELONGS_TO_OTHERS, INTERNAL_ERROR = 0, 1, 2, 3

_S = grpc.StatusCode
_NOT_CONFIGURED = ErrorKind("ERR_LOCK_STORE_NOT_CONFIGURED", 500, _S.FAILED_PRECONDITION)
_NOT_FOUND = ErrorKind("ERR_LOCK_STORE_NOT_FOUND", 400, _S.INVALID_ARGUMENT)
_MALFORMED = ErrorKind("ERR_MALFORMED_REQUEST", 400, _S.INVALID_ARGUMENT)


@dataclass
class LockStore:
    """Held locks by key: owner and expiry instant (sidecar clock)."""

    name: str
    clock: Clock
    held: dict[str, tuple[str, float]] = field(default_factory=dict)

    def _live(self, key: str) -> tuple[str, float] | None:
        entry = self.held.get(key)
        if entry is not None and entry[1] <= self.clock.now():
            del self.held[key]
            return None
        return entry

    def try_lock(self, key: str, owner: str, expiry_seconds: int) -> bool:
        if self._live(key) is not None:
            return False
        self.held[key] = (owner, self.clock.now() + expiry_seconds)
        return True

    def unlock(self, key: str, owner: str) -> int:
        entry = self._live(key)
        if entry is None:
            return LOCK_DOES_NOT_EXIST
        if entry[0] != owner:
            return LOCK_BELONGS_TO_OTHERS
        del self.held[key]
        return SUCCESS


class LockAPI:
    """daprd's checks in its order, then the store; keys are `<app id>||<resource>` (keyPrefix `appid`)."""

    def __init__(self, stores: Mapping[str, LockStore], app_id: str) -> None:
        self._stores = stores
        self._app_id = app_id

    def _store(self, store: str, resource: str, owner: str) -> LockStore:
        if not self._stores:
            raise DaprError(_NOT_CONFIGURED, "lock store is not configured")
        if not resource:
            raise DaprError(_MALFORMED, f"ResourceId is empty in lock store {store}")
        if not owner:
            raise DaprError(_MALFORMED, f"LockOwner is empty in lock store {store}")
        found = self._stores.get(store)
        if found is None:
            raise DaprError(_NOT_FOUND, f"lock store {store} not found")
        return found

    def try_lock(self, store: str, resource: str, owner: str, expiry_seconds: int) -> bool:
        if expiry_seconds <= 0:
            raise DaprError(_MALFORMED, f"ExpiryInSeconds is not positive in lock store {store}")
        return self._store(store, resource, owner).try_lock(
            f"{self._app_id}||{resource}", owner, expiry_seconds
        )

    def unlock(self, store: str, resource: str, owner: str) -> int:
        return self._store(store, resource, owner).unlock(f"{self._app_id}||{resource}", owner)
