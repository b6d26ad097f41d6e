"""The activity dashboard's search box in a real browser: the text searched lives in the page's
address (`?q=`, the audit-log API's name) like the other views, a reload keeps it, Back returns
to the view before, it narrows Errors only too, and the CSV export carries it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.test_activity_views import DASHBOARD, _dashboard, _descriptions
from tests.browser.test_pages import _check_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _query(address: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(address).query)


def _search(page, text: str) -> None:
    page.fill("#search", text)
    page.press("#search", "Enter")


def test_a_search_lives_in_the_address_survives_a_reload_and_back_returns(
    live_server, sized_page, founder, marketing, shots
):
    from playwright.sync_api import expect

    page, entries = _dashboard(live_server, sized_page, founder, marketing)

    _search(page, "pb-2026-0007")
    expect(_descriptions(page)).to_have_text(
        ["Payment for PB-2026-0007 failed", "Invoice PB-2026-0007 created"]
    )
    assert _query(page.url) == {"q": ["pb-2026-0007"]}
    download = page.get_by_role("link", name="Download CSV")
    assert _query(download.get_attribute("href")) == {"q": ["pb-2026-0007"], "format": ["csv"]}

    # Errors only narrows the search, and the search stays.
    page.locator("button[data-view=errors]").click()
    expect(_descriptions(page)).to_have_text(["Payment for PB-2026-0007 failed"])
    assert _query(page.url) == {"type": ["errors"], "q": ["pb-2026-0007"]}

    page.reload()
    expect(page.locator("#search")).to_have_value("pb-2026-0007")
    expect(_descriptions(page)).to_have_text(["Payment for PB-2026-0007 failed"])

    page.go_back()
    expect(_descriptions(page)).to_have_text(
        ["Payment for PB-2026-0007 failed", "Invoice PB-2026-0007 created"]
    )
    expect(page.locator("#search")).to_have_value("pb-2026-0007")

    # An empty box is the view without a search.
    _search(page, "")
    expect(entries).to_have_count(5)
    assert _query(page.url) == {}
    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")
    _check_page(page, shots, "activity-search")


def test_a_search_the_api_would_refuse_is_not_sent(live_server, sized_page, founder, marketing):
    from playwright.sync_api import expect

    page, entries = _dashboard(live_server, sized_page, founder, marketing)
    _search(page, "ab")
    expect(page.locator("#status")).to_have_text(
        "Search for 3 to 100 characters, with three letters or digits in a row."
    )
    expect(entries).to_have_count(5)
    assert _query(page.url) == {}

    # Nor one in an address: the page opens the view without it (no 400 from the API).
    page.goto(f"{live_server.url}{DASHBOARD}?q=ab")
    expect(entries).to_have_count(5)
    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")
    expect(page.locator("#search")).to_have_value("")
