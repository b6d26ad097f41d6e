"""The edit pages in a real browser: a stored date is shown in the date field and a save
without touching it keeps it."""

import datetime

import pytest

from audit.models import AuditLog
from invoices.models import Invoice
from invoices.services import invoice_update
from leads.models import Lead
from tests.conftest import PASSWORD
from tests.factories import make_lead
from tests.money_factories import make_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page, base_url, email, next_path):
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_email", email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == f"{base_url}{next_path}"


def _date_field_state(page, selector):
    # valueAsDate is null when the browser could not read the value as a date, whatever text
    # the attribute carries.
    return page.eval_on_selector(
        selector, "el => [el.type, el.value, el.valueAsDate && el.valueAsDate.toISOString()]"
    )


def _save(page, label):
    with page.expect_navigation():
        page.get_by_role("button", name=label).click()


def test_the_lead_edit_page_shows_the_follow_up_date_and_saving_keeps_it(
    live_server, new_page, marketing, tmp_path
):
    lead = make_lead(name="Arjun Nair", follow_up_date=datetime.date(2026, 12, 24))
    page = new_page()
    _log_in(page, live_server.url, marketing.email, f"/leads/{lead.pk}/edit/")

    state = _date_field_state(page, "#id_follow_up_date")
    page.screenshot(path=tmp_path / "lead_edit.png", full_page=True)
    _save(page, "Save")

    assert state == ["date", "2026-12-24", "2026-12-24T00:00:00.000Z"]
    assert page.url == f"{live_server.url}/leads/{lead.pk}/"
    assert Lead.objects.get(pk=lead.pk).follow_up_date == datetime.date(2026, 12, 24)
    assert not AuditLog.objects.filter(action="LEAD_UPDATED").exists()


def test_the_invoice_edit_page_shows_the_due_date_and_saving_keeps_it(
    live_server, new_page, marketing, tmp_path
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    invoice_update(invoice=invoice, actor=marketing, due_date=datetime.date(2031, 3, 9))
    updates = AuditLog.objects.filter(action="INVOICE_UPDATED").count()
    page = new_page()
    _log_in(page, live_server.url, marketing.email, f"/invoices/{invoice.pk}/edit/")

    state = _date_field_state(page, "#id_due_date")
    page.screenshot(path=tmp_path / "invoice_edit.png", full_page=True)
    _save(page, "Save invoice")

    assert state == ["date", "2031-03-09", "2031-03-09T00:00:00.000Z"]
    assert page.url == f"{live_server.url}/invoices/{invoice.pk}/"
    assert Invoice.objects.get(pk=invoice.pk).due_date == datetime.date(2031, 3, 9)
    assert AuditLog.objects.filter(action="INVOICE_UPDATED").count() == updates
