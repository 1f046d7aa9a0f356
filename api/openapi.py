"""The OpenAPI document: error responses documented as `application/problem+json`, bearer auth, and the
`Problem` schema in components, so generated clients and schema checks see what the API really answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.plain_endpoint import document_plain_routes
from api.problems import PROBLEM_JSON, FieldError, Problem

__all__ = ["install_openapi", "problem_responses"]

_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not UTF-8 JSON)",
    401: "Missing or invalid bearer token",
    404: "No such resource (or it belongs to another user)",
    409: "Conflict with the current state (a limit, or a request with this Idempotency-Key in progress)",
    412: "If-Match does not match the current ETag",
    413: "Request body too large",
    422: "Invalid input; `errors` lists the offending fields",
    429: "Rate limit exceeded; see Retry-After",
    502: "The sidecar reported an error",
    503: "The sidecar is unavailable; retry",
    504: "The engine did not settle in time (dev clock advance)",
}

_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the given error statuses, each a problem+json document."""
    return {
        code: {"description": _DESCRIPTIONS.get(code, "Error"), "content": {PROBLEM_JSON: {"schema": _REF}}}
        for code in codes
    }


def install_openapi(app: FastAPI, *, description: str) -> None:
    """Build the document once, adding the problem schemas every error response refers to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=description,
            routes=app.routes,
        )
        document_plain_routes(schema, app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, FieldError):
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            model_schema.pop("$defs", None)
            components.setdefault(model.__name__, model_schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
