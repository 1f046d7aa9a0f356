"""How an actor method answers: the value on success, the domain error as data otherwise.

The SDK turns an exception raised in an actor method into an opaque 500, so `TodoError`s are caught
here and returned in the reply's `error` (the API re-raises them with `Reply.unwrap()`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from todo_actors.errors import TodoError

__all__ = ["reply"]

R = TypeVar("R", bound=BaseModel)


async def reply(reply_type: type[R], run: Callable[[], Awaitable[Any]]) -> R:
    """`reply_type(value=await run())`, or `reply_type(error=...)` when `run` raises a `TodoError`.

    Any other exception propagates: it is not the caller's mistake and may be worth a retry.
    """
    try:
        value = await run()
    except TodoError as exc:
        return reply_type(error=exc.info())
    return reply_type(value=value)
