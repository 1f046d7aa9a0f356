"""Every error the public API answers, mapped once to RFC 9457 `application/problem+json`.

Each kind has a stable `type` (`/problems/<kind>`) and one HTTP status. Domain errors (`TodoError`) come
from the actors; `ApiProblem` subclasses are raised by the facade itself (auth, limits, preconditions).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
from dapr.clients.exceptions import DaprHttpError, DaprInternalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from api.process.sidecar_link import grpc_status
from api.schemas import READ_ONLY_FIELDS
from sidecar.wire.http1 import WireError
from todo_actors.errors import (
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    TodoError,
    VersionConflict,
)
from todo_actors.sidecar_http import SidecarHttpError

__all__ = [
    "PROBLEM_JSON",
    "ApiProblem",
    "ClockNotSettled",
    "FieldError",
    "IdempotencyInProgress",
    "IdempotencyKeyReused",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Problem",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "domain_problem",
    "install_problem_handlers",
    "problem_body",
    "problem_response",
]

log = logging.getLogger("api.problems")

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One offending input: where (`loc`, e.g. `["body", "title"]`) and what is wrong."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, with `errors` listing offending fields for validation problems."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Stable URI reference naming the kind of problem, e.g. /problems/not-found")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


def _type(kind: str) -> str:
    return f"/problems/{kind}"


class ApiProblem(Exception):
    """A problem the facade raises itself; subclasses fix `kind`, `status` and `title`."""

    kind = "internal"
    status = 500
    title = "Internal error"

    def __init__(
        self, detail: str | None = None, *, headers: Mapping[str, str] | None = None, **extra: JsonValue
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


class Unauthorized(ApiProblem):
    """Missing, malformed, expired or wrongly signed bearer token. Not retryable as is."""

    kind, status, title = "unauthorized", 401, "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="todo-engine"'})


class PreconditionFailed(ApiProblem):
    """`If-Match` named a version that is no longer current: re-read, then retry."""

    kind, status, title = "precondition-failed", 412, "The resource changed (ETag mismatch)"


class PayloadTooLarge(ApiProblem):
    kind, status, title = "payload-too-large", 413, "Request body too large"


class RateLimited(ApiProblem):
    """Too many requests for this user; retryable after `Retry-After` seconds."""

    kind, status, title = "rate-limited", 429, "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"rate limit exceeded; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )


class IdempotencyKeyReused(ApiProblem):
    """The `Idempotency-Key` was used before with a different request. Not retryable."""

    kind, status, title = "idempotency-key-reused", 422, "Idempotency-Key reused with a different request"


class IdempotencyInProgress(ApiProblem):
    """A request with the same `Idempotency-Key` is still running; retry shortly."""

    kind, status, title = "idempotency-in-progress", 409, "A request with this Idempotency-Key is in progress"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class ClockNotSettled(ApiProblem):
    """A dev-clock advance stopped where the engine stayed busy; the detail says how far it got."""

    kind, status, title = "clock-not-settled", 504, "The engine did not settle while the dev clock advanced"


class ServiceUnavailable(ApiProblem):
    """The sidecar (or a store behind it) cannot be reached; retryable."""

    kind, status, title = "service-unavailable", 503, "Service unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


def problem_response(
    kind: str,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = problem_body(kind, status, title, detail, instance=instance, **extra)
    return Response(to_json(body), status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def problem_body(
    kind: str,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The problem document itself (also answered inside a batch result)."""
    body: dict[str, Any] = {"type": _type(kind), "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


_DOMAIN: dict[type[TodoError], tuple[str, int, str]] = {
    NotFound: ("not-found", 404, "Not found"),
    Forbidden: ("forbidden", 403, "Your role on this list does not allow this"),
    InvalidInput: ("invalid-input", 422, "Invalid input"),
    LimitExceeded: ("limit-exceeded", 422, "Limit exceeded"),
    VersionConflict: ("conflict", 409, "Conflict"),
}

# Limits that depend on what is already stored, not on the request: a conflict with the current state.
_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")

_STATE_LIMITS = frozenset({"items_per_list", "lists_per_owner", "webhooks_per_user"})
# Likewise fields that name other stored things: a `parent_id` naming no item of the list (or one's own
# subtask) is well-formed input that the list's current items refuse; a `user` who already is a member or
# the owner (added again with another role, or the owner leaving) is refused by the list's current members.
_STATE_FIELDS = frozenset({"parent_id", "user"})


def _domain_problem(request: Request, exc: TodoError) -> Response:
    body = domain_problem(
        exc, instance=request.url.path, if_match=request.headers.get("if-match") is not None
    )
    return Response(to_json(body), status_code=body["status"], media_type=PROBLEM_JSON)


def domain_problem(exc: TodoError, *, instance: str, if_match: bool = False) -> dict[str, Any]:
    """The problem document a domain error answers (`if_match`: a version conflict is then a 412)."""
    kind, status, title = _DOMAIN.get(type(exc), ("internal", 500, "Internal error"))
    extra: dict[str, Any] = {}
    if isinstance(exc, VersionConflict) and if_match:
        kind, status, title = "precondition-failed", 412, "The resource changed (ETag mismatch)"
    if isinstance(exc, Forbidden):
        extra = {"role": exc.details.get("role"), "needed": exc.details.get("needed")}
    if isinstance(exc, LimitExceeded):
        extra = {"limit": exc.details.get("limit"), "max": exc.details.get("max")}
        if exc.details.get("limit") in _STATE_LIMITS:
            status = 409
    if isinstance(exc, InvalidInput):
        errors = _field_errors(exc.details.get("errors") or [])
        extra["errors"] = errors or None
        if errors and all(e["loc"][:1] and e["loc"][0] in _STATE_FIELDS for e in errors):
            status = 409
    return problem_body(kind, status, title, exc.message, instance=instance, **extra)


# Sidecar answers meaning "not ready yet / try again", not "your request failed".
_NOT_READY = frozenset({"ERR_ACTOR_RUNTIME_NOT_FOUND", "ERR_HEALTH_NOT_READY", "ERR_APP_CHANNEL_NIL"})


def _field_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [part if isinstance(part, int | str) else str(part) for part in err.get("loc", ())]
        msg, kind = str(err.get("msg", "")), err.get("type")
        if kind == "extra_forbidden" and len(loc) == 2 and loc[-1] in READ_ONLY_FIELDS:
            msg, kind = "read-only field: the server sets it", "read_only"
        out.append({"loc": loc, "msg": msg, "type": kind})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json, once, for the whole app."""

    async def on_api_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            exc.kind,
            exc.status,
            exc.title,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    async def on_domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TodoError)
        return _domain_problem(request, exc)

    async def on_request_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc.errors())
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem_response(
            "validation-error",
            422,
            "Request validation failed",
            f"invalid fields: {fields}" if fields else None,
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kinds = {
            400: "bad-request",
            401: "unauthorized",
            404: "not-found",
            405: "method-not-allowed",
            413: "payload-too-large",
        }
        headers = dict(exc.headers or {})
        detail = exc.detail if isinstance(exc.detail, str) else None
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's "error parsing the body"
            detail = "the request body is not UTF-8 (JSON text must be UTF-8: RFC 8259 section 8.1)"
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem_response(
            kinds.get(exc.status_code, f"http-{exc.status_code}"),
            exc.status_code,
            _reason(exc.status_code),
            detail,
            instance=request.url.path,
            headers=headers,
        )

    async def on_unreachable(request: Request, exc: Exception) -> Response:
        log.warning("sidecar unreachable on %s: %r", request.url.path, exc)
        return problem_response(
            "service-unavailable",
            503,
            "Service unavailable",
            "the Dapr sidecar cannot be reached",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )

    async def on_dapr(request: Request, exc: Exception) -> Response:
        if grpc_status(exc) in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return await on_unreachable(request, exc)
        if isinstance(exc, DaprHttpError) and (exc.status_code == 503 or exc.error_code in _NOT_READY):
            return await on_unreachable(request, exc)
        if isinstance(exc, SidecarHttpError) and (exc.status == 503 or exc.error_code in _NOT_READY):
            return await on_unreachable(request, exc)
        log.error("sidecar error on %s: %r", request.url.path, exc)
        return problem_response(
            "upstream-error",
            502,
            "Sidecar error",
            "the Dapr sidecar reported an error",
            instance=request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return problem_response("internal", 500, "Internal error", instance=request.url.path)

    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(TodoError, on_domain)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(WireError, on_unreachable)
    app.add_exception_handler(TimeoutError, on_unreachable)
    app.add_exception_handler(DaprInternalError, on_dapr)
    app.add_exception_handler(grpc.RpcError, on_dapr)
    app.add_exception_handler(SidecarHttpError, on_dapr)
    app.add_exception_handler(Exception, on_unexpected)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette names only the first route whose path
    matched, and FastAPI has one route per method, so `/v1/lists` would claim to allow POST alone."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
