"""The activity dashboard in words and in school time, in a real browser: entities by their names
(an invoice's history with its payments), a person's day, times in India time whatever the
browser's zone, and the hourly chart readable on a phone.

Screenshots at 1280 px and 390 px go to $BROWSER_SCREENSHOTS when it is set, else to the test's
temporary directory.
"""

from __future__ import annotations

import datetime
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from audit.models import Action, AuditLog
from core.timefmt import format_datetime, school_today
from payments.models import Payment, Student
from tests.browser.conftest import ACTION_TIMEOUT_MS
from tests.browser.test_pages import WIDTHS, _check_page, _log_in
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DASHBOARD = "/dashboard/activity"
SCHOOL_FORMAT = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} IST$")


def _query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _row(**fields) -> AuditLog:
    # Straight into the table, at a chosen moment (the trail's writers stamp "now").
    return AuditLog.objects.create(severity="INFO", **fields)


def test_the_dashboard_shows_india_time_in_a_new_york_browser(live_server, browser, founder):
    from playwright.sync_api import expect

    moment = timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(minutes=5)
    _row(action=Action.LEAD_CREATED, description="Lead Asha created", created_at=moment)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="America/New_York"
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    try:
        _log_in(page, live_server.url, founder.email, next_path=DASHBOARD)
        entry = page.locator("#feed > li.entry").filter(has_text="Lead Asha created")

        expect(entry.locator(".when")).to_have_text(format_datetime(moment))
        expect(page.locator("#status")).to_have_text(re.compile(r"^Updated \d{2}:\d{2} IST$"))
        expect(page.locator("#chart svg rect.bar-total")).to_have_count(24)
        hours = page.locator("#chart svg g > title").all_text_contents()
        now_hour = timezone.localtime().replace(minute=0, second=0, microsecond=0)
        # The last bar is this hour in India (or the next, should the clock turn meanwhile).
        assert hours[-1].split(":")[0] + ":00 IST" in {
            format_datetime(now_hour),
            format_datetime(now_hour + datetime.timedelta(hours=1)),
        }
        ticks = page.locator("#chart svg text.tick").all_text_contents()[1:]
        assert ticks and all(re.fullmatch(r"\d{2}:00", t) for t in ticks), ticks
        # The browser's own clock would say something else.
        browser_hour = page.evaluate(
            "new Date().toLocaleTimeString('en-GB', {hour: '2-digit', hour12: false})"
        )
        assert browser_hour != timezone.localtime().strftime("%H")
    finally:
        context.close()


def test_entities_go_by_their_names_and_an_invoice_history_has_its_payments(
    live_server, sized_page, founder
):
    from playwright.sync_api import expect

    invoice = make_converted_invoice(actor=founder, lead=make_lead(name="Asha Menon"))
    student = Student.objects.get(lead=invoice.lead)
    payment = Payment.objects.get(invoice=invoice)
    page = sized_page()
    _log_in(page, live_server.url, founder.email, next_path=DASHBOARD)
    links = page.locator("#feed .entity-link")
    expect(links.filter(has_text=f"Invoice {invoice.number}")).to_have_count(2)
    expect(links.filter(has_text="Lead Asha Menon")).to_have_count(1)
    expect(links.filter(has_text=f"Student {student.student_code} (Asha Menon)")).to_have_count(1)
    expect(links.filter(has_text=f"Payment €50.00 on {invoice.number}")).to_have_count(1)
    assert "#" not in page.locator("#feed").inner_text()

    links.filter(has_text=f"Invoice {invoice.number}").first.click()
    heading = page.locator("#entity-filter h2")
    expect(heading).to_have_text(f"History of Invoice {invoice.number}")
    assert _query(page) == {"entityType": ["Invoice"], "entityId": [str(invoice.pk)]}
    expect(page.locator("#feed .action")).to_have_text(
        ["Payment received", "Lead converted to student", "Invoice created"]
    )
    expect(page.locator("#feed .entity-link").first).to_have_attribute(
        "title", f"Show the history of Payment #{payment.pk}"
    )

    # Opened from its address (a reload, a shared link), the server names it.
    page.reload()
    expect(heading).to_have_text(f"History of Invoice {invoice.number}")
    expect(page.locator("#feed > li.entry")).to_have_count(3)


def test_what_a_person_did_today_from_the_users_page(live_server, sized_page, founder, marketing):
    from playwright.sync_api import expect

    today = school_today()
    midnight = datetime.datetime.combine(
        today, datetime.time(), tzinfo=timezone.get_current_timezone()
    )
    actor = {"user_id": marketing.pk, "user_name": marketing.name, "user_email": marketing.email}
    _row(
        action=Action.LEAD_UPDATED,
        description="Yesterday's edit",
        created_at=midnight - datetime.timedelta(minutes=1),
        **actor,
    )
    _row(
        action=Action.LEAD_CREATED,
        description="Today's lead",
        created_at=midnight + datetime.timedelta(minutes=1),
        **actor,
    )
    page = sized_page()
    _log_in(page, live_server.url, founder.email, next_path=f"/accounts/users/{marketing.pk}/")

    page.get_by_role("link", name=f"What {marketing.name} did today").click()
    heading = page.locator("#entity-filter h2")
    expect(heading).to_have_text(f"Activity of {marketing.name} today")
    assert _query(page) == {"userId": [str(marketing.pk)], "since": [today.isoformat()]}
    expect(page.locator("#feed .description")).to_have_text(["Today's lead"])
    today_btn = page.get_by_role("button", name="Today")
    expect(today_btn).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="All time").click()
    expect(heading).to_have_text(f"Activity of {marketing.name}")
    expect(page.locator("#feed .description")).to_have_text(["Today's lead", "Yesterday's edit"])
    assert _query(page) == {"userId": [str(marketing.pk)]}

    page.go_back()
    expect(heading).to_have_text(f"Activity of {marketing.name} today")
    expect(page.locator("#feed .description")).to_have_text(["Today's lead"])

    # From a person in the feed: their timeline, and "Today" narrows it.
    page.get_by_role("button", name="Show everything").click()
    page.locator("#feed .user-link", has_text=marketing.name).first.click()
    expect(heading).to_have_text(f"Activity of {marketing.name}")
    page.get_by_role("button", name="Today").click()
    expect(page.locator("#feed .description")).to_have_text(["Today's lead"])
    assert _query(page) == {"userId": [str(marketing.pk)], "since": [today.isoformat()]}


@pytest.mark.parametrize("size", list(WIDTHS))
def test_the_dashboard_and_its_chart_fit_desktop_and_phone(
    live_server, sized_page, shots, founder, size
):
    from playwright.sync_api import expect

    invoice = make_converted_invoice(
        actor=founder, lead=make_lead(name="Parvathy Sreekumaran Nair")
    )
    page = sized_page(WIDTHS[size])
    _log_in(page, live_server.url, founder.email, next_path=DASHBOARD)
    expect(page.locator("#chart svg rect.bar-total")).to_have_count(24)
    expect(page.locator("#feed .entity-link").first).to_be_visible()
    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")

    box = page.locator("#chart")
    svg_width = box.locator("svg").evaluate("s => s.getBoundingClientRect().width")
    # The chart keeps a readable width: on a phone it scrolls inside its own box.
    assert svg_width >= 640
    scrolls = box.evaluate("b => b.scrollWidth > b.clientWidth")
    assert scrolls is (size == "phone")
    _check_page(page, shots, f"activity-dashboard-{size}")

    page.goto(f"{live_server.url}{DASHBOARD}?entityType=Invoice&entityId={invoice.pk}")
    expect(page.locator("#entity-filter h2")).to_have_text(f"History of Invoice {invoice.number}")
    expect(page.locator("#activity")).to_have_attribute("data-state", "idle")
    _check_page(page, shots, f"activity-invoice-history-{size}")
