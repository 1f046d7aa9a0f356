"""The page's pure logic, run in the browser: its event-stream parser on awkwardly split input, and its
wall-time-in-a-zone arithmetic checked against the engine's own `due_instant` (DST gaps and folds too)."""

from __future__ import annotations

from typing import Any

import pytest

from todo_actors.due import Due, due_instant, zone

from .conftest import Web

pytestmark = pytest.mark.e2e

# (due, the list's zone): zoned, floating and all-day dues, across DST gaps and folds.
DUES: list[tuple[dict[str, str], str]] = [
    ({"datetime": "2026-03-29T02:30:00", "tz": "Europe/Rome"}, "UTC"),
    ({"datetime": "2026-10-25T02:30:00", "tz": "Europe/Rome"}, "UTC"),
    ({"datetime": "2026-03-08T02:30:00", "tz": "America/New_York"}, "UTC"),
    ({"datetime": "2026-11-01T01:30:00", "tz": "America/New_York"}, "UTC"),
    ({"datetime": "2026-10-04T02:15:00", "tz": "Australia/Lord_Howe"}, "UTC"),
    ({"datetime": "2026-06-01T12:00:00", "tz": "Asia/Kathmandu"}, "UTC"),
    ({"datetime": "2026-01-15T08:00:00"}, "America/Sao_Paulo"),
    ({"date": "2026-07-04"}, "Pacific/Auckland"),
    ({"date": "2026-03-29"}, "Europe/Rome"),
]


def test_wall_times_resolve_to_the_engines_instants(web: Web) -> None:
    web.open()
    shown: list[str] = web.page.evaluate(
        """async (cases) => {
            const { dueInstant } = await import("/web/js/times.js");
            return cases.map(([due, listZone]) => new Date(dueInstant(due, listZone)).toISOString());
        }""",
        DUES,
    )
    expected = [
        due_instant(Due.model_validate(due), zone(list_zone)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for due, list_zone in DUES
    ]
    assert shown == expected
    web.assert_clean()


def test_event_stream_parser_in_the_browser(web: Web) -> None:
    """Chunks split inside a CRLF, a multi-line data field, comments, ids kept across events, retry."""
    web.open()
    result: dict[str, Any] = web.page.evaluate(
        """async () => {
            const { SseParser } = await import("/web/js/stream.js");
            const events = [];
            let retry = null;
            const parser = new SseParser((e) => events.push(e), (ms) => { retry = ms; });
            const chunks = [
                "retry: 3000\\r", "\\n: connected at cursor 4\\r\\n\\r\\n", "id: 5\\r\\nevent: task.cr",
                "eated\\r\\ndata: {\\"a\\":", "1}\\r\\n\\r", "\\ndata: line one\\ndata:line two\\n\\n",
                "id: 7\\nevent: x\\ndata\\n\\n", "id: 8\\ndata: partial",
            ];
            for (const chunk of chunks) parser.feed(chunk);
            return { events, retry };
        }"""
    )
    assert result["retry"] == 3000
    assert result["events"] == [
        {"id": "5", "type": "task.created", "data": '{"a":1}'},
        {"id": "5", "type": "message", "data": "line one\nline two"},
        {"id": "7", "type": "x", "data": ""},
    ]
    web.assert_clean()
