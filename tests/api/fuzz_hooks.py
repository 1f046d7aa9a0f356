"""schemathesis hooks for the fuzz run (`SCHEMATHESIS_HOOKS=tests.api.fuzz_hooks`): state a generated
request cannot know, handed over in `TODO_FUZZ_STATE` by the test that starts the run.

Only schema-valid (positive) cases are touched, and only where the value is state rather than input:
- half of them use a real list and item of the caller, to get past the 404s into the actors (not in the
  stateful phase: its ids come from the responses a step follows, and the run may have deleted the
  hooks' list by then, which would make a just-created resource look missing);
- an `Idempotency-Key` is made fresh per request: reusing one for a different request is a 422 by
  design (draft-ietf-httpapi-idempotency-key-header), tested on its own in test_conventions;
- an opaque cursor (`/v1/lists`, `.../items`) is one a real page returned: like an id, a made-up cursor
  names no page, and the API says so with a 422;
- a series `rule` is a real RFC 5545 RRULE: its grammar (names, value syntax, which parts combine) cannot be
  written as a JSON Schema, so the document declares a string and the API answers a bad rule with a 422
  naming the part (tested on its own in tests/workflows/recurrence);
- an item's `reminders` stay within the configured per-item limit (`TODO_REMINDERS_PER_ITEM`, 10 here):
  configuration, not the document, which bounds only the payload; over it is a 422 `limit-exceeded`;
- an import body is a real iCalendar stream: RFC 5545's grammar is no JSON Schema either, and a malformed
  one is a 400 by design (tested on its own in test_calendar);
- a webhook `url` is one the address guard lets through (the fuzzed app allows private targets, and the
  discard port on loopback receives nothing): whether a host resolves, and to what, is the network's
  state, not the document's; a refused target is a 422 (tested on its own in tests/webhooks).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

import schemathesis
from schemathesis import GenerationMode

_STATE: dict[str, Any] = json.loads(os.environ.get("TODO_FUZZ_STATE", "{}"))
_OPAQUE_CURSORS = {"/v1/lists": "lists_cursor", "/v1/lists/{list_id}/items": "items_cursor"}
_RANDOM = random.Random(0)
_REMINDERS_PER_ITEM = 10
_IMPORT_PATH = "/v1/lists/{list_id}/import"
_CALENDARS = tuple(
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\n" + todos + "END:VCALENDAR\r\n"
    for todos in (
        "",
        "BEGIN:VTODO\r\nUID:a@fuzz\r\nSUMMARY:fuzzed\r\nEND:VTODO\r\n",
        "BEGIN:VTODO\r\nUID:b@fuzz\r\nSUMMARY:due\r\nDUE;VALUE=DATE:20300101\r\nPRIORITY:1\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER;RELATED=END:-PT5M\r\nEND:VALARM\r\nEND:VTODO\r\n",
    )
)
_WEBHOOK_URL = "http://127.0.0.1:9/fuzzed"
_RULES = ("FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=MONTHLY;BYMONTHDAY=1;COUNT=3", "FREQ=YEARLY")


def _positive(case: Any) -> bool:
    meta = case.meta
    return meta is None or meta.generation.mode == GenerationMode.POSITIVE


def _linked(case: Any) -> bool:
    meta = case.meta
    return meta is not None and meta.phase.name == "stateful"  # a StrEnum, not exported


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _positive(case):
        return case
    params = case.path_parameters or {}
    if "list_id" in params and not _linked(case) and _RANDOM.random() < 0.5:
        params["list_id"] = _STATE["list_id"]
        if "item_id" in params:
            params["item_id"] = _STATE["item_id"]
    if isinstance(case.body, dict) and isinstance(case.body.get("rule"), str):
        case.body["rule"] = _RANDOM.choice(_RULES)
    if isinstance(case.body, dict) and isinstance(case.body.get("reminders"), list):
        del case.body["reminders"][_REMINDERS_PER_ITEM:]
    if case.operation.path.startswith("/v1/webhooks") and isinstance(case.body, dict) and "url" in case.body:
        case.body["url"] = _WEBHOOK_URL
    if case.operation.path == _IMPORT_PATH:
        case.body = _RANDOM.choice(_CALENDARS)
    cursor_key = _OPAQUE_CURSORS.get(case.operation.path)
    if cursor_key and case.query and "cursor" in case.query:
        case.query["cursor"] = _STATE[cursor_key]
    return case


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if not _positive(case) or not case.headers:
        return
    for name in list(case.headers):
        if name.lower() == "idempotency-key":
            case.headers[name] = uuid.uuid4().hex
