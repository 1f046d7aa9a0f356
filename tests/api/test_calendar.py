"""iCalendar export, the secret feed URL and import, over the real stack; exports are read back with the
`icalendar` library, field by field."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from tests.api.conftest import Stack, new_item, new_list

ICS = {"Content-Type": "text/calendar"}


def todos_by_summary(body: bytes) -> dict[str, Any]:
    cal = icalendar.Calendar.from_ical(body)
    return {str(t["SUMMARY"]): t for t in cal.walk("VTODO")}


def to_second(text: str) -> dt.datetime:
    """An API instant at iCalendar's resolution (whole seconds)."""
    return dt.datetime.fromisoformat(text).replace(microsecond=0)


def test_export_round_trips_every_field(client: httpx.Client) -> None:
    list_id = new_list(client, "trip", tz="Europe/Rome")["id"]
    parent = new_item(
        client,
        list_id,
        "pack",
        notes="passport\nticket",
        priority=4,
        labels=["travel", "a,b"],
        due={"datetime": "2030-03-01T09:00:00", "tz": "America/New_York"},
        reminders=[{"before_due": "PT15M"}, {"at": "2030-02-28T18:00:00Z"}],
    )
    child = new_item(client, list_id, "socks", due={"date": "2030-03-01"}, priority=1, parent_id=parent["id"])
    floating = new_item(
        client, list_id, "call", due={"datetime": "2030-03-02T10:30:00"}, start={"date": "2030-03-01"}
    )
    done = client.post(f"/v1/lists/{list_id}/items/{child['id']}:complete").json()

    r = client.get(f"/v1/lists/{list_id}/calendar.ics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    cal = icalendar.Calendar.from_ical(r.content)
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]
    todos = todos_by_summary(r.content)
    assert set(todos) == {"pack", "socks", "call"}

    pack = todos["pack"]
    assert str(pack["DESCRIPTION"]) == "passport\nticket"
    assert pack.decoded("DUE") == dt.datetime(2030, 3, 1, 9, tzinfo=ZoneInfo("America/New_York"))
    assert pack["DUE"].params["TZID"] == "America/New_York"
    assert int(pack.decoded("PRIORITY")) == 1
    assert [str(c) for c in pack["CATEGORIES"].cats] == ["travel", "a,b"]
    assert str(pack["STATUS"]) == "NEEDS-ACTION" and "COMPLETED" not in pack
    assert int(pack.decoded("SEQUENCE")) == parent["version"]
    assert pack.decoded("LAST-MODIFIED") == to_second(parent["updated_at"])
    assert "DTSTAMP" in pack
    alarms = pack.walk("VALARM")
    assert [str(a["ACTION"]) for a in alarms] == ["DISPLAY", "DISPLAY"]
    assert alarms[0].decoded("TRIGGER") == -dt.timedelta(minutes=15)
    assert alarms[0]["TRIGGER"].params["RELATED"] == "END"
    assert alarms[1].decoded("TRIGGER") == dt.datetime(2030, 2, 28, 18, tzinfo=dt.UTC)
    assert alarms[1]["TRIGGER"].params["VALUE"] == "DATE-TIME"

    socks = todos["socks"]
    assert socks.decoded("DUE") == dt.date(2030, 3, 1)
    assert socks["DUE"].params["VALUE"] == "DATE"
    assert str(socks["STATUS"]) == "COMPLETED"
    assert socks.decoded("COMPLETED") == to_second(done["completed_at"])
    assert int(socks.decoded("PRIORITY")) == 9
    assert str(socks["RELATED-TO"]) == str(pack["UID"])
    assert socks["RELATED-TO"].params["RELTYPE"] == "PARENT"

    call = todos["call"]
    assert call.decoded("DUE") == dt.datetime(2030, 3, 2, 10, 30)  # floating: no zone
    assert call.decoded("DTSTART") == dt.date(2030, 3, 1)
    assert int(call.decoded("PRIORITY")) == 0

    # UIDs are stable across exports and differ per item.
    again = todos_by_summary(client.get(f"/v1/lists/{list_id}/calendar.ics").content)
    assert {k: str(v["UID"]) for k, v in again.items()} == {k: str(v["UID"]) for k, v in todos.items()}
    assert len({str(v["UID"]) for v in todos.values()}) == 3
    assert floating["id"] in str(call["UID"])


def test_export_has_one_vtimezone_per_zone_first_and_in_order(client: httpx.Client) -> None:
    # Zone definitions are made once per zone and process and shared by every export (each takes the
    # library ~20 ms): a list with items in hundreds of zones took seconds per export before.
    list_id = new_list(client, "zones")["id"]
    zones = ["Pacific/Apia", "America/New_York", "Asia/Tokyo", "Africa/Casablanca"]
    for n, zone in enumerate(zones * 2):
        new_item(client, list_id, f"t{n}", due={"datetime": "2030-03-01T09:00:00", "tz": zone})
    first, again = (client.get(f"/v1/lists/{list_id}/calendar.ics") for _ in range(2))
    assert first.status_code == again.status_code == 200
    for body in (first.content, again.content):
        cal = icalendar.Calendar.from_ical(body)
        kinds = [c.name for c in cal.subcomponents]
        assert kinds == ["VTIMEZONE"] * 4 + ["VTODO"] * 8
        assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == sorted(zones)
        apia = cal.walk("VTIMEZONE")[-1]
        assert str(apia["TZID"]) == "Pacific/Apia" and apia.walk("DAYLIGHT")  # a zone's own rules
    assert first.content.count(b"BEGIN:VTIMEZONE") == again.content.count(b"BEGIN:VTIMEZONE") == 4


def test_export_is_the_owners_only(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client)["id"]
    with stack.client("someone-else") as stranger:
        r = stranger.get(f"/v1/lists/{list_id}/calendar.ics")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert stranger.post(f"/v1/lists/{list_id}/calendar-feed").status_code == 404
        assert stranger.post(f"/v1/lists/{list_id}/import", content=b"x", headers=ICS).status_code == 404
    with stack.client() as anonymous:
        assert anonymous.get(f"/v1/lists/{list_id}/calendar.ics").status_code == 401


def test_feed_url_serves_without_a_token_until_revoked(stack: Stack, client: httpx.Client) -> None:
    list_id = new_list(client, "feed")["id"]
    new_item(client, list_id, "water plants", due={"date": "2030-05-01"})
    r = client.post(f"/v1/lists/{list_id}/calendar-feed")
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.startswith(stack.url + "/v1/calendar-feeds/") and url.endswith(".ics")
    with httpx.Client(timeout=30) as anonymous:
        feed = anonymous.get(url)
        assert feed.status_code == 200, feed.text
        assert feed.headers["content-type"] == "text/calendar; charset=utf-8"
        assert set(todos_by_summary(feed.content)) == {"water plants"}
        # A wrong secret of the right shape, and a made-up list, are both unknown feeds.
        secret = url.rsplit(".", 2)[1]
        wrong = url.replace(secret, ("A" if secret[0] != "A" else "B") + secret[1:])
        assert anonymous.get(wrong).status_code == 404
        assert anonymous.get(url.replace(list_id, "nolist")).status_code == 404

        # Creating again replaces the secret: the first URL stops working.
        second = client.post(f"/v1/lists/{list_id}/calendar-feed").json()["url"]
        assert second != url
        assert anonymous.get(url).status_code == 404
        assert anonymous.get(second).status_code == 200

        assert client.delete(f"/v1/lists/{list_id}/calendar-feed").status_code == 204
        gone = anonymous.get(second)
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"

        # A deleted list's feed is gone with it, even if the record outlived it.
        third = client.post(f"/v1/lists/{list_id}/calendar-feed").json()["url"]
        assert client.delete(f"/v1/lists/{list_id}").status_code == 204
        assert anonymous.get(third).status_code == 404


# Shaped like Apple Reminders / Thunderbird exports: folded lines, a VTIMEZONE with a non-IANA name, an
# alarm related to START of a task without DTSTART, X- properties, an ATTACH and an RRULE.
FOREIGN = (
    b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Apple Inc.//iOS 17.0//EN\r
BEGIN:VTIMEZONE\r
TZID:W. Europe Standard Time\r
BEGIN:STANDARD\r
DTSTART:16010101T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:16010101T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VTODO\r
UID:parent-1@example.com\r
DTSTAMP:20300101T000000Z\r
SUMMARY:Renovate kitchen\r
DESCRIPTION:Call the plumber first\\, then the electrician\r
DUE;TZID=Europe/Berlin:20300610T170000\r
PRIORITY:5\r
CATEGORIES:Home,DIY\r
X-APPLE-SORT-ORDER:12345\r
RRULE:FREQ=WEEKLY\r
ATTACH:https://example.com/plan.pdf\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Reminder\r
TRIGGER:-PT1H\r
END:VALARM\r
BEGIN:VALARM\r
ACTION:AUDIO\r
TRIGGER;VALUE=DATE-TIME:20300609T080000Z\r
END:VALARM\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:after\r
TRIGGER;RELATED=END:PT5M\r
END:VALARM\r
END:VTODO\r
BEGIN:VTODO\r
UID:child-1@example.com\r
DTSTAMP:20300101T000000Z\r
SUMMARY:Buy tiles\r
RELATED-TO:parent-1@example.com\r
DUE;VALUE=DATE:20300601\r
STATUS:COMPLETED\r
COMPLETED:20300102T101010Z\r
PRIORITY:1\r
END:VTODO\r
BEGIN:VTODO\r
UID:floating@example.com\r
DTSTAMP:20300101T000000Z\r
SUMMARY:Meeting prep\r
DUE;TZID=W. Europe Standard Time:20300701T083000\r
DTSTART:20300701T070000\r
PRIORITY:9\r
X-MOZ-GENERATION:3\r
END:VTODO\r
BEGIN:VTODO\r
UID:too-long@example.com\r
DTSTAMP:20300101T000000Z\r
SUMMARY:"""
    + b"x" * 600
    + b"""\r
END:VTODO\r
BEGIN:VEVENT\r
UID:event@example.com\r
DTSTAMP:20300101T000000Z\r
DTSTART:20300101T100000Z\r
SUMMARY:not a task\r
END:VEVENT\r
END:VCALENDAR\r
"""
)


def test_import_of_another_clients_calendar(client: httpx.Client) -> None:
    list_id = new_list(client, "import")["id"]
    r = client.post(f"/v1/lists/{list_id}/import", content=FOREIGN, headers=ICS)
    assert r.status_code == 200, r.text
    report = r.json()
    created = {c["uid"]: c for c in report["created"]}
    assert set(created) == {"parent-1@example.com", "child-1@example.com", "floating@example.com"}
    assert [s["uid"] for s in report["skipped"]] == ["too-long@example.com"]
    assert "title" in report["skipped"][0]["reason"]

    parent = created["parent-1@example.com"]
    item = parent["item"]
    assert item["title"] == "Renovate kitchen"
    assert item["notes"] == "Call the plumber first, then the electrician"
    assert item["due"] == {"datetime": "2030-06-10T17:00:00", "tz": "Europe/Berlin"}
    assert item["priority"] == 2 and item["labels"] == ["Home", "DIY"]
    assert item["reminders"] == [{"before_due": "PT1H"}, {"at": "2030-06-09T08:00:00Z"}]
    dropped = " | ".join(parent["dropped"])
    for expected in ("RRULE: not imported as a series", "ATTACH", "X-APPLE-SORT-ORDER", "after the due"):
        assert expected in dropped

    child = created["child-1@example.com"]["item"]
    assert child["parent_id"] == item["id"]
    assert child["status"] == "completed" and child["due"] == {"date": "2030-06-01"}
    assert child["priority"] == 4

    prep = created["floating@example.com"]
    assert prep["item"]["start"] == {"datetime": "2030-07-01T07:00:00"}
    assert prep["item"]["priority"] == 1
    # A zone that is not IANA is kept as the UTC instant its VTIMEZONE defines (CEST, +02:00).
    assert prep["item"]["due"] == {"datetime": "2030-07-01T06:30:00", "tz": "UTC"}
    assert any("not an IANA zone" in d for d in prep["dropped"])
    assert any("X-MOZ-GENERATION" in d for d in prep["dropped"])

    items = client.get(f"/v1/lists/{list_id}/items").json()["items"]
    assert len(items) == 3


def test_import_reads_back_its_own_export(client: httpx.Client) -> None:
    source = new_list(client, "source")["id"]
    parent = new_item(
        client,
        source,
        "a",
        notes="n",
        priority=3,
        labels=["x"],
        due={"datetime": "2030-01-01T08:00:00", "tz": "Asia/Tokyo"},
        reminders=[{"before_due": "P1DT2H"}, {"at": "2029-12-31T00:00:00Z"}],
        deadline={"date": "2030-01-05"},
    )
    new_item(client, source, "b", parent_id=parent["id"], start={"datetime": "2030-01-01T07:00:00"})
    exported = client.get(f"/v1/lists/{source}/calendar.ics").content
    target = new_list(client, "target")["id"]
    r = client.post(f"/v1/lists/{target}/import", content=exported, headers=ICS)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["skipped"] == []
    assert all(c["dropped"] == [] for c in report["created"])
    keep = ("title", "notes", "priority", "labels", "due", "start", "deadline", "reminders", "status")
    before = client.get(f"/v1/lists/{source}/items").json()["items"]
    after = client.get(f"/v1/lists/{target}/items").json()["items"]
    assert [{k: i.get(k) for k in keep} for i in after] == [{k: i.get(k) for k in keep} for i in before]
    assert after[1]["parent_id"] == after[0]["id"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not a calendar", "text/calendar", 400),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nDUE:xx\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", "text/calendar", 400),
        (b"\xff\xfe", "text/calendar", 400),
        (b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "application/json", 415),
    ],
)
def test_import_refuses_what_it_cannot_read(
    client: httpx.Client, body: bytes, content_type: str, status: int
) -> None:
    list_id = new_list(client)["id"]
    r = client.post(f"/v1/lists/{list_id}/import", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/lists/{list_id}/items").json()["items"] == []


def test_openapi_documents_the_calendar_routes(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    ics = paths["/v1/lists/{list_id}/calendar.ics"]["get"]
    assert "text/calendar" in ics["responses"]["200"]["content"]
    feed = paths["/v1/calendar-feeds/{token}.ics"]["get"]
    assert "text/calendar" in feed["responses"]["200"]["content"]
    assert feed["security"] == []
    assert set(paths["/v1/lists/{list_id}/calendar-feed"]) == {"post", "delete"}
    imp = paths["/v1/lists/{list_id}/import"]["post"]
    assert list(imp["requestBody"]["content"]) == ["text/calendar"]
    assert "415" in imp["responses"]
