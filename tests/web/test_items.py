"""Lists and items through the page: signing in and out, the whole item life cycle checked against the REST
API, a reminder firing as a toast, API problems shown to the user, and the page staying usable by keyboard
and on a phone-sized screen."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, expect

from .conftest import Engine, Web

pytestmark = pytest.mark.e2e


def item_rows(web: Web) -> Locator:
    return web.page.locator("#items").get_by_test_id("item")


def new_list(web: Web, title: str, tz: str = "Europe/Rome") -> dict[str, Any]:
    with web.api() as c:
        r = c.post("/v1/lists", json={"title": title, "tz": tz})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body


def _items(web: Web, list_id: str) -> list[dict[str, Any]]:
    with web.api() as c:
        r = c.get(f"/v1/lists/{list_id}/items")
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items


def test_sign_in_with_the_dev_token_then_sign_out(web: Web, engine: Engine) -> None:
    page = web.page
    web.open()
    token = page.get_by_label("Token", exact=True)
    token.fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    # The API's problem (title and detail) is what the user reads.
    expect(page.locator("#sign-in-error")).to_contain_text("Authentication required")
    expect(page.locator("#sign-in-error")).to_contain_text("invalid token")

    # The dev token `todo-engine up --dev-clock` printed, pasted with its scheme, sent with Enter.
    assert engine.dev_token
    token.fill("Bearer " + engine.dev_token)
    token.press("Enter")
    expect(page.locator("#account-user")).to_have_text("dev")
    expect(page.locator("#connection")).to_have_text("Live")
    assert page.evaluate("sessionStorage.getItem('todo-engine.token')") == engine.dev_token
    assert page.evaluate("localStorage.getItem('todo-engine.token')") is None

    page.reload()  # the tab keeps its session
    expect(page.locator("#account-user")).to_have_text("dev")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#workspace")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('todo-engine.token')") is None

    # "Keep me signed in" stores the token in localStorage instead.
    page.get_by_label("Token", exact=True).fill(web.token)
    page.get_by_label("Keep me signed in").check()
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#account-user")).to_have_text(web.user)
    assert page.evaluate("localStorage.getItem('todo-engine.token')") == web.token
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("localStorage.getItem('todo-engine.token')") is None
    web.assert_clean(allowed=("status of 401",))


def test_list_and_item_life_cycle(web: Web) -> None:
    page = web.page
    web.sign_in()
    lists = page.locator("#lists")
    lists.get_by_label("Title").fill("Errands")
    lists.get_by_label("Time zone").fill("Europe/Rome")
    lists.get_by_role("button", name="Create list").click()
    items = page.locator("#items")
    expect(items.get_by_role("heading", name="Errands")).to_be_visible()
    list_id = lists.get_by_role("button", name="Errands").get_attribute("data-list-id")
    assert list_id

    # An item due at a wall time in a zone, with a reminder 15 minutes before.
    items.get_by_label("Title", exact=True).fill("milk")
    items.get_by_label("Kind").select_option("datetime")
    items.get_by_label("Date and time").fill("2030-05-06T10:00")
    items.get_by_label("Time zone", exact=True).fill("America/Los_Angeles")
    items.get_by_label("Reminder").select_option("PT15M")
    items.get_by_role("button", name="Add item").click()
    expect(item_rows(web)).to_have_count(1)
    expect(item_rows(web).first).to_contain_text("America/Los_Angeles")
    expect(item_rows(web).first).to_contain_text("15 min before due")
    (milk,) = _items(web, list_id)
    assert milk["due"] == {"datetime": "2030-05-06T10:00:00", "tz": "America/Los_Angeles"}
    assert milk["reminders"] == [{"before_due": "PT15M"}]

    items.get_by_label("Title", exact=True).fill("eggs")
    items.get_by_label("Kind").select_option("none")
    items.get_by_role("button", name="Add item").click()
    expect(item_rows(web)).to_have_count(2)

    # Reorder: eggs first, in the page and in the API.
    items.get_by_role("button", name="Move “eggs” up").click()
    expect(item_rows(web).first).to_contain_text("eggs")
    assert [i["title"] for i in _items(web, list_id)] == ["eggs", "milk"]

    # Edit in a dialog (If-Match: the item's ETag).
    items.get_by_role("button", name="Edit “milk”").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Title", exact=True).fill("oat milk")
    dialog.get_by_label("Labels").fill("shop, dairy-free")
    dialog.get_by_label("1 hour before").check()
    dialog.get_by_label("Also remind at").fill("2030-05-06T09:00")
    dialog.get_by_label("in time zone").fill("Europe/Rome")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(item_rows(web).nth(1)).to_contain_text("oat milk")
    expect(item_rows(web).nth(1)).to_contain_text("#dairy-free")
    milk = _items(web, list_id)[1]
    assert milk["labels"] == ["shop", "dairy-free"]
    assert milk["reminders"] == [
        {"before_due": "PT15M"},
        {"before_due": "PT1H"},
        {"at": "2030-05-06T07:00:00Z"},
    ]

    # Complete with the keyboard (Space on the checkbox), then reopen.
    done = items.get_by_label("Completed: oat milk")
    done.focus()
    page.keyboard.press("Space")
    expect(done).to_be_checked()
    expect(item_rows(web).nth(1)).to_have_class("item done")
    assert [i["status"] for i in _items(web, list_id)] == ["open", "completed"]
    expect(page.locator("#items .list-meta")).to_contain_text("1 open, 1 done")
    done.uncheck()
    expect(item_rows(web).nth(1)).to_have_class("item")
    assert [i["status"] for i in _items(web, list_id)] == ["open", "open"]

    # A stale ETag: the dialog shows the API's 412 problem.
    items.get_by_role("button", name="Edit “eggs”").click()
    dialog = page.get_by_role("dialog")
    with web.api() as c:
        eggs = _items(web, list_id)[0]
        c.patch(f"/v1/lists/{list_id}/items/{eggs['id']}", json={"notes": "free range"}).raise_for_status()
    dialog.get_by_label("Title", exact=True).fill("brown eggs")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("The resource changed (ETag mismatch)")
    dialog.get_by_role("button", name="Cancel").click()

    # Delete after confirming.
    items.get_by_role("button", name="Delete “eggs”").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete item").click()
    expect(item_rows(web)).to_have_count(1)
    assert [i["title"] for i in _items(web, list_id)] == ["oat milk"]

    # Rename, then delete, the list.
    items.get_by_role("button", name="Edit list").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Title").fill("Errands & more")
    dialog.get_by_role("button", name="Save").click()
    expect(lists.get_by_role("button", name="Errands & more")).to_be_visible()
    web.shot("list")
    items.get_by_role("button", name="Delete list").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete list").click()
    expect(lists).to_contain_text("No lists yet")
    with web.api() as c:
        assert c.get(f"/v1/lists/{list_id}").status_code == 404
    web.assert_clean(allowed=("status of 412",))


def test_a_fired_reminder_shows_a_toast(web: Web, engine: Engine) -> None:
    page = web.page
    new_list(web, "Calls", tz="UTC")
    web.sign_in()
    expect(page.locator("#clock")).to_be_visible()
    items = page.locator("#items")
    items.get_by_label("Title", exact=True).fill("call mum")
    items.get_by_label("Kind").select_option("datetime")
    # Due in 40 minutes of engine time (the list is in UTC), so the reminder 15 minutes before is ahead too.
    due = engine.now(web.user) + dt.timedelta(minutes=40)
    items.get_by_label("Date and time").fill(due.strftime("%Y-%m-%dT%H:%M"))
    items.get_by_label("Reminder").select_option("PT15M")
    items.get_by_role("button", name="Add item").click()
    expect(item_rows(web)).to_have_count(1)
    before = engine.now(web.user)
    page.locator("#dev-clock").get_by_role("button", name="+1 hour").click()
    toasts = page.locator("#toasts")  # role=status, aria-live=polite
    expect(toasts.get_by_text("Reminder: call mum")).to_be_visible()
    expect(toasts.get_by_text("Due now: call mum")).to_be_visible()
    assert (engine.now(web.user) - before).total_seconds() >= 3600
    expect(page.get_by_test_id("clock-status")).to_contain_text("Advanced")
    web.shot("toast")
    page.get_by_role("button", name="Dismiss: Due now: call mum").click()
    expect(toasts.get_by_text("Due now: call mum")).to_be_hidden()
    web.assert_clean()


def test_labels_and_a_small_screen(web: Web) -> None:
    page = web.page
    listed = new_list(web, "Phone")
    with web.api() as c:
        c.post(
            f"/v1/lists/{listed['id']}/items", json={"title": "a rather long title " * 4}
        ).raise_for_status()
    web.sign_in()
    page.locator("#series summary").click()  # open the series form too
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((el) => el.offsetParent !== null)
            .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || (el.tagName === "BUTTON"
                              && el.textContent.trim())))
            .map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []
    page.set_viewport_size({"width": 390, "height": 844})
    expect(item_rows(web)).to_have_count(1)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"
    web.shot("phone")
    web.assert_clean()


def test_calendar_feed_control_shows_the_url_once_and_revokes_it(web: Web) -> None:
    page = web.page
    list_id = new_list(web, "Feed")["id"]
    web.sign_in()
    page.locator("#lists").get_by_role("button", name="Feed").click()
    items = page.locator("#items")
    items.get_by_role("button", name="Calendar feed").click()
    page.get_by_role("dialog").get_by_role("button", name="Make feed URL").click()
    url = page.get_by_test_id("feed-url").input_value()
    assert f"/v1/calendar-feeds/{list_id}." in url
    page.get_by_role("dialog").get_by_role("button", name="Done").click()
    assert httpx.get(url, timeout=30).status_code == 200

    items.get_by_role("button", name="Revoke feed").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id("toast-success")).to_contain_text("Calendar feed revoked")
    assert httpx.get(url, timeout=30).status_code == 404
