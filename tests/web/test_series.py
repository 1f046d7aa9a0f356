"""A recurring task through the page: the friendly form writes the RRULE, the engine's refusal of a rule is
shown, the next dates are listed, two days of dev-clock time bring two occurrences live (items, timeline,
workflow history and its generations), and pause, resume, skip and cancel drive the workflow."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .conftest import Engine, Web

pytestmark = pytest.mark.e2e

ROME = ZoneInfo("Europe/Rome")


def _series(web: Web) -> list[dict[str, Any]]:
    with web.api() as c:
        r = c.get("/v1/series")
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def test_daily_series_over_two_days_of_dev_clock(web: Web, engine: Engine) -> None:
    page = web.page
    with web.api() as c:
        c.post("/v1/lists", json={"title": "Plants", "tz": "Europe/Rome"}).raise_for_status()
    web.sign_in()
    panel = page.locator("#series")
    panel.get_by_text("New recurring task").click()
    panel.get_by_label("Title of each item").fill("water plants")

    # The friendly choices write the rule; experts may type their own.
    rule = panel.get_by_label("Rule (RFC 5545 RRULE)")
    panel.get_by_label("Repeats").select_option("WEEKLY")
    panel.get_by_label("Wed").check()
    panel.get_by_label("Fri").check()
    expect(rule).to_have_value("FREQ=WEEKLY;BYDAY=WE,FR")
    panel.get_by_label("Repeats").select_option("MONTHLY")
    panel.get_by_label("Day of the month").fill("-1")
    expect(rule).to_have_value("FREQ=MONTHLY;BYMONTHDAY=-1")
    rule.fill("FREQ=SECONDLY")
    expect(panel.get_by_label("Repeats")).to_have_value("CUSTOM")
    panel.get_by_role("button", name="Create series").click()
    expect(panel.get_by_role("alert")).to_contain_text("Invalid input: FREQ=SECONDLY is not supported")
    assert _series(web) == []

    # Daily from a full hour 2-3 hours ahead (engine time), as a wall time in Rome: two days later exactly
    # two dates have passed, whatever the minute now (and even across a DST change).
    panel.get_by_label("Repeats").select_option("DAILY")
    expect(rule).to_have_value("FREQ=DAILY")
    start = (engine.now(web.user) + dt.timedelta(hours=3)).astimezone(ROME).replace(minute=0, second=0)
    panel.get_by_label("First date").fill(start.strftime("%Y-%m-%dT%H:%M"))
    panel.get_by_label("Time zone").fill("Europe/Rome")
    panel.get_by_role("button", name="Create series").click()

    detail = panel.get_by_test_id("series-detail")
    expect(detail.get_by_test_id("series-status")).to_have_text("running")
    expect(detail.get_by_test_id("upcoming")).to_have_count(8)  # the next dates
    expect(detail.get_by_test_id("upcoming").first).to_contain_text("#1 planned")
    expect(detail.get_by_test_id("occurrence")).to_have_count(0)
    workflow = detail.get_by_test_id("workflow-status")
    expect(workflow).to_contain_text("generation 0")
    expect(workflow).to_contain_text("sleeping on a durable timer")
    expect(detail.get_by_test_id("history")).to_contain_text("timer set for")
    (created,) = _series(web)
    assert created["rule"] == "FREQ=DAILY" and created["tz"] == "Europe/Rome"
    assert created["dtstart"] == start.strftime("%Y-%m-%dT%H:%M:00")
    web.shot("created")

    # Two days later, watched live: the page steps the clock through each occurrence.
    clock = page.locator("#dev-clock")
    clock.get_by_label("Amount", exact=True).fill("2")
    clock.get_by_label("Unit").select_option("86400")
    clock.get_by_role("button", name="Advance", exact=True).click()
    expect(page.get_by_test_id("clock-status")).to_contain_text("2 occurrence(s) fell due", timeout=30_000)
    occurrences = detail.get_by_test_id("occurrence")
    expect(occurrences).to_have_count(2)
    expect(occurrences.nth(0)).to_contain_text("#1 created")
    expect(occurrences.nth(1)).to_contain_text("#2 created")
    items = page.locator("#items").get_by_test_id("item")
    expect(items).to_have_count(2)
    expect(items.nth(1)).to_contain_text("Occurrence #2 of a series")
    expect(page.locator("#toasts")).to_contain_text("Recurring: “water plants” #2")
    expect(workflow).to_contain_text("generation 2")
    expect(detail.get_by_test_id("history")).to_contain_text("continued as new: generation 2 started")
    expect(detail.get_by_test_id("series-stats")).to_contain_text("2 created · 0 skipped · 0 missed")
    with web.api() as c:
        logged = c.get(f"/v1/series/{created['id']}/occurrences").json()["items"]
    assert [(o["index"], o["status"]) for o in logged] == [(0, "created"), (1, "created")]
    web.shot("two-days-later")

    # Earlier generations this page saw stay readable after continue-as-new.
    page.locator(".generations summary").click()
    expect(detail.get_by_test_id("old-history").first).to_be_visible()

    # The controls drive the workflow.
    detail.get_by_role("button", name="Pause").click()
    expect(detail.get_by_test_id("series-status")).to_have_text("paused")
    expect(workflow).to_contain_text("SUSPENDED")
    detail.get_by_role("button", name="Resume").click()
    expect(detail.get_by_test_id("series-status")).to_have_text("running")
    detail.get_by_role("button", name="Skip next").click()
    expect(occurrences).to_have_count(3)
    expect(occurrences.nth(2)).to_contain_text("#3 skipped")
    expect(detail.get_by_test_id("upcoming").first).to_contain_text("#4 planned")
    detail.get_by_role("button", name="Cancel series").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel series").click()
    expect(detail.get_by_test_id("series-status")).to_have_text("cancelled")
    expect(detail.get_by_role("button", name="Pause")).to_have_count(0)
    assert [s["status"] for s in _series(web)] == ["cancelled"]
    web.assert_clean(allowed=("status of 422",))
