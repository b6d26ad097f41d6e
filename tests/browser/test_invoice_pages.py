"""The invoice form, the invoice page and the payment forms in a real browser: rows added and
removed, running totals as amounts are typed as people write them, the lead's defaults, the
state's actions only, a payment dated in the past, and two people converting one invoice at once.
Each page at 1280 px and 390 px: no sideways scrolling, axe-core clean, no CSP refusal
(screenshots in $BROWSER_SCREENSHOTS when set)."""

from __future__ import annotations

import datetime
import re

import pytest

from core.timefmt import school_today
from invoices.models import Invoice
from payments.models import Payment
from tests.browser.test_pages import WIDTHS, _check_page, _log_in
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_invoice_form_adds_rows_and_totals_as_you_type(
    live_server, sized_page, marketing, shots, width
):
    from playwright.sync_api import expect

    lead = make_lead(name="Meera Krishnan", interested_level="A2")
    page = sized_page(WIDTHS[width])
    _log_in(page, live_server.url, marketing.email, next_path=f"/invoices/new/for-lead/{lead.pk}/")
    rows = page.locator("#item-rows .item-row")
    totals = page.locator("#form-totals")

    expect(rows).to_have_count(1)
    expect(page.locator("#id_items-0-level")).to_have_value("A2")  # the lead's interest
    expect(page.get_by_role("button", name="Remove item 1")).to_be_disabled()
    page.select_option("#id_currency", "INR")
    page.fill("#id_items-0-amount", "1,00,000")
    expect(totals.locator("[data-total=subtotal]")).to_have_text("₹1,00,000.00")

    page.get_by_role("button", name="+ Add an item").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#id_items-1-amount")).to_be_focused()
    expect(page.locator("#id_items-1-level")).to_have_value("A2")  # from the row above
    page.fill("#id_items-1-description", "Exam fee")
    page.fill("#id_items-1-amount", "2000.5")
    page.fill("#id_discount", "2,000")
    expect(totals.locator("[data-total=subtotal]")).to_have_text("₹1,02,000.50")
    expect(totals.locator("[data-total=discount]")).to_have_text("\u2212₹2,000.00")
    expect(totals.locator("[data-total=total]")).to_have_text("₹1,00,000.50")
    expect(totals.locator("[data-total=payable]")).to_have_text("₹1,00,000.50")
    page.fill("#id_payable_now", "25,000")
    expect(totals.locator("[data-total=payable]")).to_have_text("₹25,000.00")

    page.get_by_role("button", name="+ Add an item").click()
    page.fill("#id_items-2-amount", "12,34")
    expect(page.locator("#totals-problem")).to_have_text(
        "Check the amount of item 3 (such as 2,000 or 2000.50)."
    )
    page.get_by_role("button", name="Remove item 3").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#totals-problem")).to_be_hidden()
    page.select_option("#id_currency", "EUR")
    expect(totals.locator("[data-total=subtotal]")).to_have_text("€102,000.50")
    # Checked last: after Chromium's full-page screenshot a click can land off target.
    _check_page(page, shots, f"invoice-form-{width}")

    with page.expect_navigation():
        page.get_by_role("button", name="Generate invoice").click()

    invoice = Invoice.objects.get()
    assert (invoice.currency, invoice.total_amount, invoice.payable_now) == ("EUR", 100000.5, 25000)
    assert [i.description for i in invoice.items.all()] == ["German Language Course", "Exam fee"]
    expect(page.locator("#invoice-status")).to_have_text("Draft")
    balance = page.locator("#invoice-balance")
    expect(balance).to_contain_text("Total€100,000.50")
    expect(balance).to_contain_text("Paid so far€0.00")
    expect(balance).to_contain_text("Remaining€100,000.50")
    expect(balance).to_contain_text("Due now€25,000.00")
    actions = page.locator("#invoice-actions")
    expect(actions.get_by_role("link", name="Record payment & convert")).to_be_visible()
    expect(actions.get_by_role("link", name="Edit")).to_be_visible()
    _check_page(page, shots, f"invoice-draft-{width}")


def test_removing_a_row_of_a_saved_invoice_keeps_the_others(live_server, sized_page, marketing):
    from playwright.sync_api import expect

    invoice = make_invoice(actor=marketing, amounts=("100", "200", "300"))
    page = sized_page()
    _log_in(page, live_server.url, marketing.email, next_path=f"/invoices/{invoice.pk}/edit/")

    page.get_by_role("button", name="Remove item 1").click()
    expect(page.locator("#form-totals [data-total=subtotal]")).to_have_text("€500.00")
    with page.expect_navigation():
        page.get_by_role("button", name="Save invoice").click()

    invoice.refresh_from_db()
    assert [int(i.amount) for i in invoice.items.all()] == [200, 300]
    assert invoice.subtotal == 500


def test_without_the_script_the_form_still_adds_a_row(live_server, browser, marketing):
    from playwright.sync_api import expect

    lead = make_lead()
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        _log_in(
            page, live_server.url, marketing.email, next_path=f"/invoices/new/for-lead/{lead.pk}/"
        )
        page.fill("#id_items-0-amount", "134")
        with page.expect_navigation():
            page.get_by_role("button", name="+ Add an item").click()
        expect(page.locator("#item-rows .item-row")).to_have_count(2)
        expect(page.locator("#id_items-0-amount")).to_have_value("134")
        page.fill("#id_items-1-description", "Books")
        page.fill("#id_items-1-amount", "1,000")
        with page.expect_navigation():
            page.get_by_role("button", name="Generate invoice").click()
        assert Invoice.objects.get().subtotal == 1134
    finally:
        context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_each_state_offers_only_its_actions_and_says_why(
    live_server, sized_page, founder, marketing, shots, width
):
    from playwright.sync_api import expect

    part = make_converted_invoice(actor=marketing, amounts=("300",), paid="100")
    paid = make_converted_invoice(actor=marketing, amounts=("134",), paid="134")
    page = sized_page(WIDTHS[width])
    _log_in(page, live_server.url, founder.email, next_path=f"/invoices/{part.pk}/")

    expect(page.locator("#invoice-status")).to_have_text("Partially paid")
    expect(page.locator("#invoice-balance")).to_contain_text("Remaining€200.00")
    actions = page.locator("#invoice-actions")
    expect(actions.get_by_role("link", name="Record payment", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Record payment & convert")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel invoice")).to_have_count(0)
    expect(page.locator("#invoice-state-note")).to_contain_text(
        re.compile(r"became student STU-\d{4}-\d{4} with the first payment, so there is nothing")
    )
    _check_page(page, shots, f"invoice-partially-paid-{width}")

    page.goto(f"{live_server.url}/invoices/{paid.pk}/")
    expect(page.locator("#invoice-status")).to_have_text("Paid")
    expect(actions.locator("a.button, button")).to_have_text(["Download PDF"])
    expect(page.locator("#invoice-state-note")).to_contain_text("Paid in full")
    _check_page(page, shots, f"invoice-paid-{width}")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_payment_received_days_ago_is_dated_so(live_server, sized_page, marketing, shots, width):
    from playwright.sync_api import expect

    invoice = make_converted_invoice(actor=marketing, amounts=("300",), paid="100")
    days_ago = school_today() - datetime.timedelta(days=3)
    page = sized_page(WIDTHS[width])
    _log_in(page, live_server.url, marketing.email, next_path=f"/invoices/{invoice.pk}/")

    page.get_by_role("link", name="Record payment", exact=True).click()
    expect(page.locator("#id_paid_on")).to_have_value(school_today().isoformat())
    page.fill("#id_amount", "50")
    page.fill("#id_paid_on", days_ago.isoformat())
    _check_page(page, shots, f"payment-form-{width}")
    with page.expect_navigation():
        page.get_by_role("button", name="Record payment").click()

    expect(page.locator(".messages li.success")).to_have_text("Payment recorded.")
    shown = f"{days_ago.day} {days_ago:%b %Y}"
    expect(page.locator("#invoice-payments tbody tr").first.locator("td").first).to_have_text(shown)
    assert Payment.objects.get(amount=50).paid_on == days_ago
    page.goto(f"{live_server.url}/leads/{invoice.lead_id}/")
    expect(page.locator("#student-payments")).to_contain_text(shown)
    _check_page(page, shots, f"student-payments-{width}")


def test_a_future_payment_date_is_a_form_error(live_server, sized_page, marketing):
    from playwright.sync_api import expect

    invoice = make_invoice(actor=marketing)
    page = sized_page()
    _log_in(
        page, live_server.url, marketing.email, next_path=f"/payments/invoice/{invoice.pk}/convert/"
    )
    tomorrow = school_today() + datetime.timedelta(days=1)

    page.fill("#id_paid_amount", "50")
    page.fill("#id_paid_on", tomorrow.isoformat())
    with page.expect_navigation():
        page.get_by_role("button", name="Record payment & convert").click()

    expect(page.locator("#id_paid_on_error")).to_have_text(
        "The payment date cannot be in the future."
    )
    assert Payment.objects.count() == 0


def test_two_people_converting_at_once_the_loser_sees_one_clear_message(
    live_server, sized_page, marketing, founder, shots
):
    from playwright.sync_api import expect

    invoice = make_invoice(actor=marketing)
    url = f"/payments/invoice/{invoice.pk}/convert/"
    anna, ravi = sized_page(), sized_page()
    _log_in(anna, live_server.url, marketing.email, next_path=url)
    _log_in(ravi, live_server.url, founder.email, next_path=url)
    for page in (anna, ravi):
        page.fill("#id_paid_amount", "50")

    with anna.expect_navigation():
        anna.get_by_role("button", name="Record payment & convert").click()
    with ravi.expect_navigation():
        ravi.get_by_role("button", name="Record payment & convert").click()

    expect(anna.locator(".messages li")).to_have_count(1)
    expect(anna.locator(".messages li.success")).to_contain_text("is now student STU-")
    expect(ravi.locator(".messages li")).to_have_count(1)
    expect(ravi.locator(".messages li.error")).to_have_text(
        re.compile(r"^Your payment of €50\.00 was not recorded: someone else converted ")
    )
    expect(ravi.locator("#invoice-status")).to_have_text("Partially paid")
    expect(ravi.locator("form input[name=paid_amount]")).to_have_count(0)
    assert Payment.objects.count() == 1
    _check_page(ravi, shots, "conversion-lost")
