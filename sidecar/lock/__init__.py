"""The distributed lock building block with an embedded, in-process lock store."""

from sidecar.lock.api import LOCK_TYPE, LockAPI, LockStore

__all__ = ["LOCK_TYPE", "LockAPI", "LockStore"]
