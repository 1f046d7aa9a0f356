"""Which user owns which list. Task events name a list but not its owner; the API records owners as it
serves them, so the channel rarely has to ask the list actor (and still knows the owner when the list was
just deleted). Thread-safe: in tests the public API and the channel run on different threads."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["OwnerCache"]


class OwnerCache:
    """list id -> owner, the `size` most recently used (an owner changes only by a handover, which the
    members route records)."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._owners: OrderedDict[str, str] = OrderedDict()

    def record(self, list_id: str, owner: str) -> None:
        with self._lock:
            self._owners[list_id] = owner
            self._owners.move_to_end(list_id)
            if len(self._owners) > self._size:
                self._owners.popitem(last=False)

    def get(self, list_id: str) -> str | None:
        with self._lock:
            return self._owners.get(list_id)
