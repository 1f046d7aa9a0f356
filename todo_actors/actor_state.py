"""`ActorStore`: a list actor's stored state, read and written through the SDK's state provider directly.

The actor keeps its own cache (the loaded list as domain objects, its outbox), so the SDK state manager's
tracker would only add a second copy of every bucket and a marker per missing key for the whole activation
(100,000 idle lists pay for it), and re-serialize each saved value to refresh that copy. Writes are staged
and sent as one transaction, the same wire call the state manager makes.
"""

from __future__ import annotations

from typing import Any

from dapr.actor import Actor
from dapr.actor.runtime.state_change import ActorStateChange, StateChangeKind

__all__ = ["NO_STATE_MANAGER", "ActorStore"]

_DELETE = object()


class ActorStore:
    """Reads and one staged transaction for one actor; every method runs inside the actor's turn."""

    __slots__ = ("_actor", "_staged")

    def __init__(self, actor: Actor) -> None:
        self._actor = actor
        self._staged: dict[str, Any] | None = None  # made on the first write: most lists are only read

    async def try_get(self, key: str) -> tuple[bool, Any]:
        """(True, value) if `key` is stored, else (False, None); never cached here."""
        ctx = self._actor.runtime_ctx
        return await ctx.state_provider.try_load_state(ctx.actor_type_info.type_name, self._actor.id.id, key)

    def set(self, key: str, value: Any) -> None:
        self._stage(key, value)

    def remove(self, key: str) -> None:
        """Delete `key` in the next commit (deleting a key that is not stored is not an error)."""
        self._stage(key, _DELETE)

    async def commit(self) -> None:
        """Send the staged writes as one transaction. Whatever happens, nothing stays staged: a failed
        commit is the caller's to handle (it drops its caches and reloads)."""
        staged, self._staged = self._staged, None
        if not staged:
            return
        changes = [
            ActorStateChange(key, None, StateChangeKind.remove)
            if value is _DELETE
            else ActorStateChange(key, value, StateChangeKind.update)
            for key, value in staged.items()
        ]
        ctx = self._actor.runtime_ctx
        await ctx.state_provider.save_state(ctx.actor_type_info.type_name, self._actor.id.id, changes)

    def discard(self) -> None:
        self._staged = None

    def _stage(self, key: str, value: Any) -> None:
        if self._staged is None:
            self._staged = {}
        self._staged[key] = value


class _NoStateManager:
    """Stands in for the SDK's per-actor `ActorStateManager` in actors that keep state through
    `ActorStore`: the SDK still clears and saves its state manager around every call, which must cost
    nothing, and 100,000 idle lists need not carry 100,000 empty trackers. Any other use is a bug."""

    async def clear_cache(self) -> None:
        return None

    async def save_state(self) -> None:
        return None

    def set_state_context(self, context_id: str | None) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"this actor keeps its state through ActorStore, not the state manager ({name})")


NO_STATE_MANAGER: Any = _NoStateManager()
"""Assign to `self._state_manager` in an actor's `__init__` (shared by all such actors)."""
