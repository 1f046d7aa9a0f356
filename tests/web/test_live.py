"""Live updates: a change made with plain HTTP (as with curl) reaches the open page through `/v1/events`
without a reload, and a dropped stream resumes with Last-Event-ID, replaying what it missed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Request, expect

from .conftest import Web
from .test_items import item_rows, new_list

pytestmark = pytest.mark.e2e


def test_changes_made_through_the_api_show_up_without_reload(web: Web) -> None:
    page = web.page
    listed = new_list(web, "Shared")
    list_id = listed["id"]
    web.sign_in()
    expect(page.locator("#items").get_by_role("heading", name="Shared")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    with web.api() as c:
        url = f"/v1/lists/{list_id}/items"
        made = c.post(url, json={"title": "added with curl", "due": {"date": "2030-01-02"}}).json()
        expect(item_rows(web)).to_have_count(1)
        expect(item_rows(web).first).to_contain_text("added with curl")
        expect(item_rows(web).first).to_contain_text("all day")
        c.post(f"{url}/{made['id']}:complete").raise_for_status()
        expect(page.locator("#items").get_by_label("Completed: added with curl")).to_be_checked()
        c.patch(f"{url}/{made['id']}", json={"title": "renamed with curl"}).raise_for_status()
        expect(item_rows(web).first).to_contain_text("renamed with curl")
        second = c.post(url, json={"title": "second"}).json()
        expect(item_rows(web)).to_have_count(2)
        assert c.delete(f"{url}/{second['id']}").status_code == 204
        expect(item_rows(web)).to_have_count(1)
        # A list made elsewhere appears once something happens in it.
        other = c.post("/v1/lists", json={"title": "Made elsewhere"}).json()
        c.post(f"/v1/lists/{other['id']}/items", json={"title": "x"}).raise_for_status()
    expect(page.locator("#lists").get_by_role("button", name="Made elsewhere")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    web.assert_clean()


def test_a_dropped_stream_resumes_from_the_last_event_id(web: Web) -> None:
    page = web.page
    list_id = new_list(web, "Flaky network")["id"]
    web.sign_in()
    url = f"/v1/lists/{list_id}/items"
    with web.api() as c:
        c.post(url, json={"title": "before the drop"}).raise_for_status()
        expect(item_rows(web)).to_have_count(1)
        last_id = c.get("/v1/changes").json()["next_cursor"]
        streams: list[Request] = []
        page.on("request", lambda r: streams.append(r) if r.url.endswith("/v1/events") else None)
        reloads: list[Request] = []
        page.on("request", lambda r: reloads.append(r) if r.url.split("?")[0].endswith("/items") else None)
        # Offline, then tell the page the network came back: it drops its stream and cannot reconnect.
        page.context.set_offline(True)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        expect(page.locator("#connection")).to_have_text("Reconnecting…")
        c.post(url, json={"title": "while offline"}).raise_for_status()
        page.context.set_offline(False)  # the real `online` event: reconnect now
        expect(item_rows(web)).to_have_count(2)
    expect(item_rows(web).nth(1)).to_contain_text("while offline")
    expect(page.locator("#connection")).to_have_text("Live")
    resumed = [r.headers.get("last-event-id") for r in streams]
    assert resumed and resumed[-1] == last_id, resumed
    assert reloads == [], "the missed change came from the stream's replay, not from reloading the list"
    web.assert_clean(allowed=("net::ERR_INTERNET_DISCONNECTED",))
