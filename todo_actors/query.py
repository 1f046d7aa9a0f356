"""One page of a list's items in display order, filtered, with an opaque cursor; pure.

The cursor is the display-order key (position, created_at, id) of the last item served, so a page
boundary stays put when items are added or removed elsewhere: nothing is served twice or skipped
except items that moved across the boundary.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue

from todo_actors.due import due_instant
from todo_actors.errors import InvalidInput
from todo_actors.interface import QueryTodos, TodoPage
from todo_actors.model import OrderKey, TodoItem, TodoList
from todo_actors.model import item_order_key as order_key

__all__ = ["decode_cursor", "encode_cursor", "order_key", "query_page"]

# Dues are compared by the start of their day or their wall time, so an all-day item due on D falls in
# any range that covers the day [D 00:00, D+1 00:00) of the list's zone.
_DAY_START = dt.time(0, 0)


def encode_cursor(parts: Sequence[JsonValue]) -> str:
    """An opaque, URL-safe cursor for a sort key."""
    text = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Inverse of `encode_cursor`; InvalidInput for anything it did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput.at("cursor", "not a cursor this API returned") from None
    if not isinstance(parts, list):
        raise InvalidInput.at("cursor", "not a cursor this API returned")
    return parts


def _item_cursor(item: TodoItem) -> str:
    position, created_at, item_id = order_key(item)
    return encode_cursor([position, created_at.isoformat(), item_id])


def _cursor_key(cursor: str) -> OrderKey:
    parts = decode_cursor(cursor)
    try:
        position, created_at, item_id = parts
        key = (int(position), dt.datetime.fromisoformat(created_at), str(item_id))
    except (TypeError, ValueError):
        raise InvalidInput.at("cursor", "not a cursor this API returned") from None
    if key[1].tzinfo is None or isinstance(position, bool) or not isinstance(position, int):
        raise InvalidInput.at("cursor", "not a cursor this API returned")
    return key


def _matches(item: TodoItem, query: QueryTodos, state: TodoList) -> bool:
    if query.status is not None and item.status != query.status:
        return False
    if query.label is not None and query.label not in item.labels:
        return False
    if query.series_id is not None and item.series_id != query.series_id:
        return False
    if query.parent_id is not None and item.parent_id != query.parent_id:
        return False
    if query.due_before is not None or query.due_after is not None:
        if item.due is None:
            return False
        at = due_instant(item.due, state.zone, _DAY_START)
        if query.due_after is not None and at < query.due_after:
            return False
        if query.due_before is not None and at >= query.due_before:
            return False
    return True


def query_page(state: TodoList, query: QueryTodos, ordered: Sequence[TodoItem] | None = None) -> TodoPage:
    """Items matching every given filter, in display order, after `query.cursor`, at most `limit`.

    Due filters keep items with `due_after <= due < due_before` (all-day dues count from the start of
    their day in the list's zone) and drop items without a due. `ordered` is `state.ordered_items()` when
    the caller has it cached.
    """
    items = state.ordered_items() if ordered is None else ordered
    start = 0
    if query.cursor is not None:
        after = _cursor_key(query.cursor)
        start = bisect.bisect_right(items, after, key=order_key)
    page: list[TodoItem] = []
    next_cursor = None
    for item in items[start:]:
        if not _matches(item, query, state):
            continue
        if len(page) == query.limit:
            next_cursor = _item_cursor(page[-1])
            break
        page.append(item)
    # Built without validation: the items are the state's own, validated when they were stored (validating
    # a 50-item page again ran every item's model validator, ~20 us a read).
    return TodoPage.model_construct(items=page, next_cursor=next_cursor, list_version=state.version)
