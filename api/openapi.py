"""The OpenAPI document: error responses documented as `application/problem+json`, bearer auth, and the
`Problem` schema in components, so generated clients and schema checks see what the API really answers.

The document states the rules the code enforces and nothing looser: parameters are absent rather than
null, and the one-of and text rules the domain checks in code (a due, a reminder, a local wall time, a
zone name, a duration) are written as JSON Schema too (`tighten_domain_schemas`).
"""

from __future__ import annotations

import importlib.resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.plain_endpoint import document_plain_routes
from api.problems import PROBLEM_JSON, FieldError, Problem

__all__ = ["SSE_EVENT_SCHEMA", "install_openapi", "problem_responses", "tighten_domain_schemas"]

_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not UTF-8 JSON)",
    401: "Missing or invalid bearer token",
    403: "Your role on this shared list does not allow this (a stranger's list answers 404)",
    404: "No such resource (or it belongs to another user)",
    409: "Conflict with the current state (a limit, a membership, or a request with this Idempotency-Key in "
    "progress)",
    412: "If-Match does not match the current ETag",
    413: "Request body too large",
    422: "Invalid input; `errors` lists the offending fields",
    429: "Rate limit exceeded; see Retry-After",
    502: "The sidecar reported an error",
    503: "The sidecar is unavailable; retry",
    504: "The engine did not settle in time (dev clock advance)",
}

_REF = {"$ref": "#/components/schemas/Problem"}

SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event: `id` is the feed cursor (send it back as `Last-Event-ID`), "
    "`event` the event's type and `data` the FeedEvent as JSON. A block with only `retry` sets the "
    "reconnection delay; comment lines (`: keep-alive`) carry no event.",
    "properties": {
        "id": {"type": "string", "pattern": r"^\d{1,18}$"},
        "event": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/FeedEvent"},
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}
"""`schema` of `text/event-stream` describes each event (OpenAPI 3.1 has no `itemSchema` yet)."""


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
        _parameters_never_null(schema)
        tighten_domain_schemas(components)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _parameters_never_null(schema: dict[str, Any]) -> None:
    """`str | None = None` parameters are optional, not nullable: a query or header has no null on the
    wire (a client sending the text `null` sends a string, which the parameter's own rules judge)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", ()):
                param_schema = parameter.get("schema", {})
                variants = param_schema.get("anyOf")
                if not variants:
                    continue
                kept = [v for v in variants if v != {"type": "null"}]
                if len(kept) == 1:
                    del param_schema["anyOf"]
                    param_schema.update(kept[0])
                else:
                    param_schema["anyOf"] = kept


# A wall time without offset, as the domain reads it (`YYYY-MM-DDTHH:MM[:SS[.ffffff]]`); days past a
# month's end and 29 February are left out, so every string matching is a real wall time.
_DATE = (
    r"(?!0000)[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
LOCAL_DATETIME = rf"^{_DATE}T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{{1,6}})?)?$"
# Years 1900-9000, in front of a date or date-time (`todo_actors.due.EARLIEST_YEAR`, `workflows.recurrence`).
IN_YEARS = "^(?=(?:19|[2-8][0-9])[0-9][0-9]-|9000-)"
# `todo_actors.due.parse_duration`: weeks, days, hours, minutes, seconds, at most 366 days in all; the
# digits are bounded so that any duration matching stays under that (9 W + 99 D + 999 H + ... < 212 days).
DURATION = (
    r"^P(?!$)(?:[0-9]W)?(?:[0-9]{1,2}D)?"
    r"(?:T(?=[0-9])(?:[0-9]{1,3}H)?(?:[0-9]{1,4}M)?(?:[0-9]{1,5}S)?)?$"
)


def _zone_names() -> list[str]:
    text = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return sorted(set(text.split()) - {"Factory"})


def _exactly_one(first: str, second: str) -> list[dict[str, Any]]:
    """One of two members given (not null), the other absent or null."""
    return [
        {"required": [a], "properties": {a: {"type": "string"}, b: {"type": "null"}}}
        for a, b in ((first, second), (second, first))
    ]


def tighten_domain_schemas(components: dict[str, Any]) -> None:
    """Write the rules the domain types check in code into their component schemas."""
    zone = {"type": "string", "enum": _zone_names()}
    local = {"type": "string", "pattern": LOCAL_DATETIME}
    local_in_years = {"type": "string", "pattern": IN_YEARS + LOCAL_DATETIME[1:]}
    due = components.get("Due")
    if due is not None:
        props = due["properties"]
        props["date"]["anyOf"][0]["pattern"] = IN_YEARS
        props["datetime"] = {"anyOf": [local_in_years, {"type": "null"}], "title": "Datetime"}
        props["tz"] = {"anyOf": [zone, {"type": "null"}], "title": "Tz"}
        due["oneOf"] = _exactly_one("date", "datetime")
        # an all-day date carries no zone (it resolves in the list's)
        due["oneOf"][0]["properties"]["tz"] = {"type": "null"}
    reminder = components.get("Reminder")
    if reminder is not None:
        reminder["properties"]["at"]["anyOf"][0]["pattern"] = IN_YEARS
        reminder["properties"]["before_due"] = {
            "anyOf": [{"type": "string", "pattern": DURATION}, {"type": "null"}],
            "title": "Before Due",
        }
        reminder["oneOf"] = _exactly_one("at", "before_due")
    for name in ("ListCreate", "ListPatch", "ListUpdateArgs", "SeriesSpec"):
        model = components.get(name)
        if model is not None:
            model["properties"]["tz"] = {**model["properties"]["tz"], **zone}
    # `UpdateList` and `UpdateTodo` refuse an explicit null for these: leave them out to keep them.
    for name, fields in (
        ("ListPatch", ("title", "tz")),
        ("ItemPatch", ("title", "position")),
        ("ListUpdateArgs", ("title", "tz")),
        ("ItemUpdateArgs", ("title", "position")),
        ("ItemMoveArgs", ("position",)),
    ):
        properties = components.get(name, {}).get("properties", {})
        if not properties:
            continue
        for field in fields:
            prop = properties[field]
            kept = [v for v in prop.pop("anyOf", ()) if v != {"type": "null"}]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            prop.update(zone if field == "tz" else {})
    # A `before_due` reminder needs a due to count back from (the domain refuses it otherwise).
    for name in ("ItemCreate", "ItemAddArgs"):
        model = components.get(name)
        if model is not None:
            model["anyOf"] = [
                {"properties": {"reminders": {"items": {"properties": {"before_due": {"type": "null"}}}}}},
                {"required": ["due"], "properties": {"due": {"$ref": "#/components/schemas/Due"}}},
            ]
    # ...and a change that clears the due cannot bring one (a kept due is stored state, not in the document).
    for name in ("ItemPatch", "ItemUpdateArgs"):
        model = components.get(name)
        if model is not None:
            model["anyOf"] = [
                {"properties": {"due": {"not": {"type": "null"}}}},
                {
                    "properties": {
                        "reminders": {
                            "anyOf": [
                                {"type": "null"},
                                {"items": {"properties": {"before_due": {"type": "null"}}}},
                            ]
                        }
                    }
                },
            ]
    patch = components.get("SeriesPatch")
    if patch is not None:  # "nothing to change" otherwise
        patch["anyOf"] = [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
            for name in ("rule", "template")
        ]
    # A series' wall times: years 1900-9000 (the recurrence refuses others), no offset.
    series_local = local_in_years
    series = components.get("SeriesSpec")
    if series is not None:
        series["properties"]["dtstart"].update(series_local)
        series["properties"]["dtstart"].pop("format", None)
        series["properties"]["exdates"]["items"] = series_local
    # Responses carry the same local wall times (no offset, so not an RFC 3339 `date-time`).
    for name, field in (("Series", "dtstart"), ("Upcoming", "local"), ("OccurrenceEntry", "local")):
        prop = components.get(name, {}).get("properties", {}).get(field)
        if prop is None:
            continue
        nullable = any(v == {"type": "null"} for v in prop.get("anyOf", ()))
        for key in ("anyOf", "format", "type"):
            prop.pop(key, None)
        prop.update({"anyOf": [local, {"type": "null"}]} if nullable else local)
    series_out = components.get("Series")
    if series_out is not None:
        series_out["properties"]["exdates"]["items"] = local
