"""The members panel, driven by two people in two browsers: the owner shares a list, changes the member's
role and removes them (the member's open page follows live: the list shows their role and the item actions
it allows, then disappears), then shares it again and hands the list over (the panel and the list's actions
follow the new roles)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from .conftest import Engine, Web, open_web
from .test_items import new_list

pytestmark = pytest.mark.e2e


def _members(web: Web, list_id: str) -> list[dict[str, Any]]:
    with web.api() as c:
        r = c.get(f"/v1/lists/{list_id}/members")
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def _expect_item_actions(web: Web, *, allowed: bool) -> None:
    """The item controls an editor has (complete, reorder, edit with its reminders, delete): all or none."""
    items = web.page.locator("#items")
    expect(items.get_by_test_id("item")).to_have_count(2)
    for title in ("milk", "bread"):
        box = items.get_by_label(f"Completed: {title}")
        if allowed:
            expect(box).to_be_enabled()
        else:
            expect(box).to_be_disabled()
        for action in ("Move", "Edit", "Delete"):
            buttons = items.get_by_role("button", name=re.compile(rf"^{action} “{title}”"))
            expect(buttons).to_have_count((2 if action == "Move" else 1) if allowed else 0)


def _expect_series_actions(web: Web, *, allowed: bool) -> None:
    """The series form and the open series' controls (pause, skip, edit, cancel): all or none."""
    series = web.page.locator("#series")
    series.get_by_role("button", name="water").click()
    expect(series.get_by_test_id("series-detail")).to_contain_text("water")
    form = expect(series.get_by_text("New recurring task"))
    if allowed:
        form.to_be_visible()
    else:
        form.to_be_hidden()
    for action in ("Pause", "Skip next", "Edit", "Cancel series"):
        expect(series.get_by_role("button", name=action, exact=True)).to_have_count(1 if allowed else 0)


def test_share_change_role_remove_and_hand_over(web: Web, browser: Browser, engine: Engine) -> None:
    list_id = new_list(web, "Team")["id"]
    with web.api() as c:
        start = (engine.now(web.user) + dt.timedelta(days=1)).replace(microsecond=0, tzinfo=None)
        body = {"list_id": list_id, "template": {"title": "water"}, "rule": "FREQ=DAILY"}
        c.post("/v1/series", json=body | {"dtstart": start.isoformat()}).raise_for_status()
        item = {"title": "milk", "reminders": [{"before_due": "PT1H"}], "due": {"date": "2030-01-02"}}
        c.post(f"/v1/lists/{list_id}/items", json=item).raise_for_status()
        c.post(f"/v1/lists/{list_id}/items", json={"title": "bread"}).raise_for_status()
    web.sign_in()
    panel = web.page.locator("#members")
    expect(panel.get_by_test_id("members")).to_contain_text(f"{web.user} (you)")

    with open_web(browser, engine, "member") as friend:
        friend.sign_in()
        friend_lists = friend.page.locator("#lists")
        expect(friend_lists.get_by_role("button", name="Team")).to_have_count(0)

        # Share as a viewer: the friend's page shows the list, read only, without reloading.
        panel.get_by_label("User id").fill(friend.user)
        panel.get_by_label("Role", exact=True).select_option("viewer")
        panel.get_by_role("button", name="Add member").click()
        expect(panel.get_by_label(f"Role of {friend.user}")).to_have_value("viewer")
        assert _members(web, list_id)[1] == {"user": friend.user, "role": "viewer"}
        team = friend_lists.get_by_role("button", name="Team")
        expect(team).to_contain_text("shared · viewer")
        team.click()
        friend_panel = friend.page.locator("#members")
        expect(friend_panel.get_by_role("button", name="Leave list")).to_be_visible()
        expect(friend_panel.get_by_role("button", name="Add member")).to_be_hidden()
        expect(friend.page.locator("#items").get_by_role("button", name="Delete list")).to_have_count(0)
        expect(friend.page.locator("#items").get_by_role("button", name="Add item")).to_be_hidden()
        # The owner's series on the list shows to the member too.
        expect(friend.page.locator("#series").get_by_role("button", name="water")).to_be_visible()
        _expect_item_actions(friend, allowed=False)
        _expect_series_actions(friend, allowed=False)

        # Promote to editor; the member's page follows the membership events.
        panel.get_by_label(f"Role of {friend.user}").select_option("editor")
        expect(team).to_contain_text("shared · editor")
        expect(friend.page.locator("#items").get_by_role("button", name="Add item")).to_be_visible()
        assert _members(web, list_id)[1]["role"] == "editor"
        _expect_item_actions(friend, allowed=True)
        _expect_series_actions(friend, allowed=True)
        friend.page.get_by_label("Completed: milk").check()
        expect(web.page.get_by_label("Completed: milk")).to_be_checked()  # the owner's page, live

        # Back to viewer: the actions go again, without a reload.
        panel.get_by_label(f"Role of {friend.user}").select_option("viewer")
        expect(team).to_contain_text("shared · viewer")
        _expect_item_actions(friend, allowed=False)
        expect(friend.page.get_by_label("Completed: milk")).to_be_checked()  # the status still shows

        # Remove: the list leaves the member's page at once.
        panel.get_by_role("button", name=f"Remove {friend.user}").click()
        web.page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        expect(team).to_have_count(0)
        assert [m["user"] for m in _members(web, list_id)] == [web.user]

        # Share again as an editor and hand the list over: the roles swap on both pages.
        panel.get_by_label("User id").fill(friend.user)
        panel.get_by_role("button", name="Add member").click()
        panel.get_by_label(f"Role of {friend.user}").select_option("owner")
        web.page.get_by_role("dialog").get_by_role("button", name="Hand over").click()
        expect(panel.get_by_role("button", name="Leave list")).to_be_visible()
        expect(panel.get_by_role("button", name="Add member")).to_be_hidden()
        mine = web.page.locator("#lists").get_by_role("button", name="Team")
        expect(mine).to_contain_text("shared · editor")
        expect(web.page.locator("#items").get_by_role("button", name="Edit list")).to_have_count(0)
        assert _members(web, list_id) == [
            {"user": friend.user, "role": "owner"},
            {"user": web.user, "role": "editor"},
        ]
        expect(friend_lists.get_by_role("button", name="Team")).not_to_contain_text("shared")
        friend.assert_clean(allowed=("404",))
    web.assert_clean()
