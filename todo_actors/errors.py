"""Domain errors of the todo lists: one root, five kinds, each saying whether a retry can help.

An exception raised inside an actor reaches the caller as an opaque 500, so every error can also travel
as a plain `ErrorInfo` model (`err.info()` in the actor, `TodoError.from_info(info)` at the API).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

__all__ = [
    "ErrorInfo",
    "Forbidden",
    "InvalidInput",
    "LimitExceeded",
    "NotFound",
    "TodoError",
    "VersionConflict",
]

ErrorKind = Literal["not_found", "forbidden", "version_conflict", "limit_exceeded", "invalid_input"]


class ErrorInfo(BaseModel):
    """A `TodoError` as data, so it can be returned by an actor method or logged as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ErrorKind
    message: str
    details: dict[str, JsonValue] = {}


class TodoError(Exception):
    """Root of every domain error. `retryable` says whether the same call can succeed later."""

    kind: ClassVar[ErrorKind]
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **details: JsonValue) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, JsonValue] = details

    def info(self) -> ErrorInfo:
        return ErrorInfo(kind=self.kind, message=self.message, details=self.details)

    @staticmethod
    def from_info(info: ErrorInfo) -> TodoError:
        """Rebuild the error an actor reported (the inverse of `info()`)."""
        cls = _BY_KIND[info.kind]
        err = cls.__new__(cls)
        TodoError.__init__(err, info.message, **info.details)
        return err

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, **{self.details!r})"


class NotFound(TodoError):
    """The list or item does not exist (or belongs to another user). Not retryable."""

    kind = "not_found"


class Forbidden(TodoError):
    """A member of a shared list lacks the role the change needs (a viewer editing, an editor deleting the
    list). Strangers get NotFound instead, so only members learn that a list exists. Not retryable."""

    kind = "forbidden"

    def __init__(self, message: str, *, role: str, needed: str) -> None:
        super().__init__(message, role=role, needed=needed)


class VersionConflict(TodoError):
    """`expected_version` is stale: someone else changed it first.

    Retryable after re-reading the current state (optimistic concurrency); the API answers 412.
    """

    kind = "version_conflict"
    retryable = True

    def __init__(self, message: str, *, expected: int, actual: int) -> None:
        super().__init__(message, expected=expected, actual=actual)


class LimitExceeded(TodoError):
    """A size limit (items per list, reminders per item, ...) would be exceeded. Not retryable."""

    kind = "limit_exceeded"

    def __init__(self, message: str, *, limit_name: str, limit: int) -> None:
        super().__init__(message, limit=limit_name, max=limit)


class InvalidInput(TodoError):
    """The command is malformed or breaks an invariant; `details["errors"]` lists the fields.

    Not retryable: the same input fails the same way.
    """

    kind = "invalid_input"

    def __init__(self, message: str, *, errors: list[dict[str, JsonValue]] | None = None) -> None:
        super().__init__(message, errors=list(errors or []))

    @classmethod
    def at(cls, loc: str, message: str) -> InvalidInput:
        """One offending field: `InvalidInput.at("parent_id", "no such item")`."""
        return cls(f"{loc}: {message}", errors=[{"loc": [loc], "msg": message}])

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> InvalidInput:
        errors: list[dict[str, JsonValue]] = [
            {"loc": [_loc(part) for part in e["loc"]], "msg": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"msg": str(exc)}
        return cls(f"invalid {exc.title}: {first['msg']}", errors=errors)


def _loc(part: Any) -> JsonValue:
    return part if isinstance(part, int | str) else str(part)


_BY_KIND: dict[str, type[TodoError]] = {
    c.kind: c for c in (NotFound, Forbidden, VersionConflict, LimitExceeded, InvalidInput)
}
