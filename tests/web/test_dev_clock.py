"""The dev-clock control: it shows the engine's time and moves it (custom amounts included); on an engine
started without `--dev-clock`, `GET /v1/dev/clock` is 404 and the page hides the control."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from .conftest import Engine, Web, open_web, running_engine

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def plain_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("web-plain"), dev_clock=False, log_name="plain.log") as up:
        yield up


def test_the_control_shows_and_moves_engine_time(web: Web, engine: Engine) -> None:
    page = web.page
    web.sign_in()
    header = page.locator("#clock")
    expect(header).to_be_visible()
    before = engine.now(web.user)
    panel = page.locator("#dev-clock")
    panel.get_by_label("Amount", exact=True).fill("90")
    panel.get_by_label("Unit").select_option("60")
    panel.get_by_role("button", name="Advance", exact=True).click()
    expect(page.get_by_test_id("clock-status")).to_contain_text("Advanced to")
    moved = (engine.now(web.user) - before).total_seconds()
    assert 90 * 60 <= moved < 90 * 60 + 60, moved
    # The header shows the engine's time, not the browser's.
    shown = page.get_by_test_id("clock-now").get_attribute("datetime")
    assert shown is not None
    assert abs((dt.datetime.fromisoformat(shown) - engine.now(web.user)).total_seconds()) < 30
    status = page.get_by_test_id("clock-status")
    first = status.inner_text()
    page.locator("#dev-clock").get_by_role("button", name="+1 week").click()
    expect(status).not_to_have_text(first)
    expect(status).to_contain_text("Advanced to")
    assert (engine.now(web.user) - before).total_seconds() >= 7 * 86400 + 90 * 60
    web.assert_clean()


def test_without_the_dev_clock_the_control_is_hidden(browser: Browser, plain_engine: Engine) -> None:
    with open_web(browser, plain_engine, "test_without_the_dev_clock") as web:
        with web.api() as c:
            assert c.get("/v1/dev/clock").status_code == 404
        web.sign_in()
        expect(web.page.locator("#lists").get_by_role("heading", name="Lists")).to_be_visible()
        expect(web.page.locator("#dev-clock")).to_be_hidden()
        expect(web.page.locator("#clock")).to_be_hidden()
        web.assert_clean(allowed=("status of 404",))
