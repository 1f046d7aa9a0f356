"""Subtasks: an item's `parent_id` must name an item of the same list, form no cycle, and stay within
the nesting limit; deleting an item takes its whole subtree with it.
"""

from __future__ import annotations

from collections import deque

from todo_actors.errors import InvalidInput, LimitExceeded
from todo_actors.model import TodoItem, TodoList

__all__ = ["check_parent", "descendants"]


def check_parent(state: TodoList, item_id: str, parent_id: str | None, max_depth: int) -> None:
    """Raise unless `item_id` (new or existing, with its subtree) may sit under `parent_id`."""
    if parent_id is None:
        return
    if parent_id not in state.items:
        raise InvalidInput.at("parent_id", f"no item {parent_id!r} in this list")
    depth, seen = 0, set()
    cursor: str | None = parent_id
    while cursor is not None and cursor not in seen:
        if cursor == item_id:
            raise InvalidInput.at("parent_id", "an item cannot be moved under its own subtask")
        seen.add(cursor)
        depth += 1
        parent = state.items.get(cursor)
        cursor = None if parent is None else parent.parent_id
    height = max((_levels_below(state, d.id, item_id) for d in descendants(state, item_id)), default=0)
    if depth + height > max_depth:
        raise LimitExceeded(
            f"subtasks nest at most {max_depth} levels deep", limit_name="subtask_depth", limit=max_depth
        )


def descendants(state: TodoList, item_id: str) -> list[TodoItem]:
    """Every item below `item_id`, each after its parent, siblings in display order."""
    children: dict[str, list[TodoItem]] = {}
    for item in state.ordered_items():
        if item.parent_id is not None:
            children.setdefault(item.parent_id, []).append(item)
    found: list[TodoItem] = []
    queue, seen = deque([item_id]), {item_id}
    while queue:
        for child in children.get(queue.popleft(), []):
            if child.id not in seen:
                seen.add(child.id)
                found.append(child)
                queue.append(child.id)
    return found


def _levels_below(state: TodoList, item_id: str, ancestor: str) -> int:
    depth, cursor = 0, item_id
    while cursor != ancestor and depth <= len(state.items):
        depth += 1
        cursor = state.items[cursor].parent_id or ancestor
    return depth
