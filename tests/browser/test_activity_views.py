"""The activity dashboard's views in a real browser: All / Errors only, an entity's history and a
person's timeline live in the page's address (a reload keeps them, Back goes to the one before);
action codes read as words; the CSV export of the view shown.

Screenshots at 1280 px and 390 px go to $BROWSER_SCREENSHOTS when it is set, else to the test's
temporary directory.
"""

from __future__ import annotations

import csv
from urllib.parse import parse_qs, urlsplit

import pytest

from audit.models import Action, AuditLog, Severity
from audit.services import AuditEntry, audit_record
from tests.browser.test_pages import WIDTHS, _check_page, _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DASHBOARD = "/dashboard/activity"


def _query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _trail(founder, marketing):
    """An invoice's two rows, one of them an error, and the marketing colleague's two."""
    info, error = Severity.INFO, Severity.ERROR
    rows = [
        (Action.INVOICE_GENERATED, info, "Invoice PB-2026-0007 created", "Invoice", 7, founder),
        (Action.LEAD_CREATED, info, "Lead Asha created", "Lead", 41, marketing),
        (
            Action.LEAD_TO_STUDENT_CONVERSION,
            info,
            "Lead Asha became student PB-S-0001",
            "Lead",
            41,
            marketing,
        ),
        (Action.PAYMENT_RECEIVED, error, "Payment for PB-2026-0007 failed", "Invoice", 7, None),
    ]
    for action, severity, description, entity_type, entity_id, actor in rows:
        entry = AuditEntry(
            action,
            description=description,
            severity=severity,
            entity_type=entity_type,
            entity_id=entity_id,
            actor=actor,
        )
        audit_record(entry)


def _descriptions(page):
    return page.locator("#feed .description")


def _dashboard(live_server, sized_page, founder, marketing, count=5):
    """The founder's dashboard over the trail, loaded: the page and its entries."""
    from playwright.sync_api import expect

    _trail(founder, marketing)
    page = sized_page()
    _log_in(page, live_server.url, founder.email, next_path=DASHBOARD)
    entries = page.locator("#feed > li.entry")
    expect(entries).to_have_count(count)  # the trail and the login
    return page, entries


def test_all_or_errors_only_lives_in_the_address_survives_a_reload_and_back_returns(
    live_server, sized_page, founder, marketing
):
    from playwright.sync_api import expect

    page, entries = _dashboard(live_server, sized_page, founder, marketing)
    errors_btn = page.locator("button[data-view=errors]")
    all_btn = page.locator("button[data-view=all]")
    expect(all_btn).to_have_attribute("aria-pressed", "true")

    errors_btn.click()
    expect(entries).to_have_count(1)
    expect(_descriptions(page)).to_have_text(["Payment for PB-2026-0007 failed"])
    assert _query(page) == {"type": ["errors"]}
    expect(errors_btn).to_have_attribute("aria-pressed", "true")
    expect(errors_btn).to_have_class("view-btn active")
    expect(all_btn).to_have_attribute("aria-pressed", "false")

    page.reload()
    expect(errors_btn).to_have_attribute("aria-pressed", "true")
    expect(entries).to_have_count(1)
    expect(_descriptions(page)).to_have_text(["Payment for PB-2026-0007 failed"])

    page.go_back()
    expect(all_btn).to_have_attribute("aria-pressed", "true")
    expect(entries).to_have_count(5)
    assert _query(page) == {}


def test_an_entity_history_has_a_heading_a_way_back_an_address_to_share_and_back_works(
    live_server, sized_page, founder, marketing
):
    from playwright.sync_api import expect

    page, entries = _dashboard(live_server, sized_page, founder, marketing)
    heading = page.locator("#entity-filter h2")
    expect(heading).to_be_hidden()

    entries.filter(has_text="Invoice PB-2026-0007 created").locator(".entity-link").click()
    expect(heading).to_have_text("History of Invoice #7")
    expect(_descriptions(page)).to_have_text(
        ["Payment for PB-2026-0007 failed", "Invoice PB-2026-0007 created"]
    )
    assert _query(page) == {"entityType": ["Invoice"], "entityId": ["7"]}
    shared = page.url

    # The address, opened by a colleague in a browser of their own, shows the same history.
    other = sized_page()
    _log_in(other, live_server.url, founder.email, next_path=DASHBOARD)
    other.goto(shared)
    expect(other.locator("#entity-filter h2")).to_have_text("History of Invoice #7")
    expect(other.locator("#feed .description")).to_have_text(
        ["Payment for PB-2026-0007 failed", "Invoice PB-2026-0007 created"]
    )

    # Everything again: now with the colleague's login too.
    page.get_by_role("button", name="Show everything").click()
    expect(heading).to_be_hidden()
    expect(entries).to_have_count(6)
    assert _query(page) == {}

    page.go_back()
    expect(heading).to_have_text("History of Invoice #7")
    expect(entries).to_have_count(2)
    page.go_back()
    expect(heading).to_be_hidden()
    expect(entries).to_have_count(6)


def test_a_person_s_timeline_shows_what_they_did_by_name_also_after_a_reload(
    live_server, sized_page, founder, marketing
):
    from playwright.sync_api import expect

    page, entries = _dashboard(live_server, sized_page, founder, marketing)
    heading = page.locator("#entity-filter h2")

    entries.filter(has_text="Lead Asha created").locator(".user-link").click()
    expect(heading).to_have_text("Activity of Manu Marketing")
    expect(_descriptions(page)).to_have_text(
        ["Lead Asha became student PB-S-0001", "Lead Asha created"]
    )
    assert _query(page) == {"userId": [str(marketing.pk)]}

    # The name is not in the address: after a reload the server names the person.
    page.reload()
    expect(heading).to_have_text("Activity of Manu Marketing")
    expect(entries).to_have_count(2)

    # Errors only, within the timeline: a view of its own in the address, and nothing matches.
    page.click("button[data-view=errors]")
    expect(page.locator("#feed-empty")).to_be_visible()
    assert _query(page) == {"type": ["errors"], "userId": [str(marketing.pk)]}
    expect(heading).to_have_text("Activity of Manu Marketing")

    page.go_back()
    expect(entries).to_have_count(2)
    expect(heading).to_have_text("Activity of Manu Marketing")


def test_action_codes_read_as_words_in_the_feed_and_the_top_actions(
    live_server, sized_page, founder, marketing
):
    from playwright.sync_api import expect

    # A code the page has no words for (written before a label existed, say) shows as it is.
    audit_record(AuditEntry("LEGACY_THING", description="An old row"))
    page, entries = _dashboard(live_server, sized_page, founder, marketing, count=6)

    conversion = entries.filter(has_text="Lead Asha became student").locator(".action")
    expect(conversion).to_have_text("Lead converted to student")
    expect(conversion).to_have_attribute("title", "LEAD_TO_STUDENT_CONVERSION")
    expect(entries.filter(has_text="An old row").locator(".action")).to_have_text("LEGACY_THING")
    expect(entries.nth(0).locator(".action")).to_have_text("Logged in")
    top = page.locator("#top-actions li .action")
    expect(top).to_have_count(6)
    expect(top.filter(has_text="Lead converted to student")).to_have_count(1)
    assert "LEAD_TO_STUDENT_CONVERSION" not in page.locator("#top-actions").inner_text()


def test_download_csv_exports_the_view_shown(live_server, sized_page, founder, marketing):
    from playwright.sync_api import expect

    page, entries = _dashboard(live_server, sized_page, founder, marketing)
    download = page.get_by_role("link", name="Download CSV")
    expect(download).to_be_visible()

    entries.filter(has_text="Invoice PB-2026-0007 created").locator(".entity-link").click()
    expect(entries).to_have_count(2)
    page.click("button[data-view=errors]")
    expect(entries).to_have_count(1)
    with page.expect_download() as info:
        download.click()
    saved = info.value
    assert saved.suggested_filename.startswith("audit-log-")
    assert saved.suggested_filename.endswith(".csv")
    with open(saved.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["description"] for row in rows] == ["Payment for PB-2026-0007 failed"]
    assert rows[0]["entityType"] == "Invoice"

    # Back to everything: the button exports everything (oldest first). The export itself is in
    # the trail now (DATA_ACCESSED).
    page.get_by_role("button", name="Show everything").click()
    page.click("button[data-view=all]")
    expect(entries).to_have_count(6)
    with page.expect_download() as info:
        download.click()
    with open(info.value.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    ids = [int(row["id"]) for row in rows]
    expected = AuditLog.objects.filter(id__lte=ids[-1]).order_by("id")
    assert ids == list(expected.values_list("id", flat=True))
    assert {"Payment for PB-2026-0007 failed", "Lead Asha created"} <= {
        row["description"] for row in rows
    }


@pytest.mark.parametrize("size", list(WIDTHS))
def test_an_entity_history_at_desktop_and_phone_width(
    live_server, sized_page, shots, founder, marketing, size
):
    from playwright.sync_api import expect

    _trail(founder, marketing)
    page = sized_page(WIDTHS[size])
    _log_in(page, live_server.url, founder.email, next_path=DASHBOARD)
    page.goto(f"{live_server.url}{DASHBOARD}?entityType=Lead&entityId=41")
    expect(page.locator("#entity-filter h2")).to_have_text("History of Lead #41")
    expect(page.locator("#feed > li.entry")).to_have_count(2)
    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    _check_page(page, shots, f"activity-history-{size}")
