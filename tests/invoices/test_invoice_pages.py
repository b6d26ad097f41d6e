"""The invoice pages: what the edit form shows comes back unchanged when saved untouched."""

import datetime

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from audit.models import AuditLog
from invoices.models import Invoice, InvoiceItem
from invoices.services import invoice_update
from tests.html_forms import read_post_form
from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


def _items(invoice):
    return [model_to_dict(i, exclude=["id"]) for i in InvoiceItem.objects.filter(invoice=invoice)]


def test_saving_the_invoice_edit_page_untouched_changes_nothing(staff, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00", "156.00"), payable_now="100.00")
    invoice_update(invoice=invoice, actor=marketing, due_date=datetime.date(2031, 3, 9))
    before = model_to_dict(Invoice.objects.get(pk=invoice.pk))
    items_before = _items(invoice)
    updates_before = AuditLog.objects.filter(action="INVOICE_UPDATED").count()

    page = staff.get(f"/invoices/{invoice.pk}/edit/").content.decode()
    data, inputs = read_post_form(page, having="due_date")
    response = staff.post(f"/invoices/{invoice.pk}/edit/", data)

    assert inputs["due_date"]["type"] == "date"
    assert data["due_date"] == "2031-03-09"
    assert response.status_code == 302
    assert model_to_dict(Invoice.objects.get(pk=invoice.pk)) == before
    assert _items(invoice) == items_before
    assert AuditLog.objects.filter(action="INVOICE_UPDATED").count() == updates_before


def test_a_due_date_entered_on_the_new_invoice_page_shows_on_its_edit_page(staff, marketing):
    from tests.factories import make_lead

    lead = make_lead()
    staff.post(
        f"/invoices/new/for-lead/{lead.pk}/",
        {
            "currency": "EUR",
            "due_date": "2031-01-15",
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "0",
            "items-MIN_NUM_FORMS": "1",
            "items-MAX_NUM_FORMS": "20",
            "items-0-description": "German Language Course",
            "items-0-amount": "134",
        },
    )
    invoice = Invoice.objects.get()

    data, _ = read_post_form(
        staff.get(f"/invoices/{invoice.pk}/edit/").content.decode(), having="due_date"
    )

    assert invoice.due_date == datetime.date(2031, 1, 15)
    assert data["due_date"] == "2031-01-15"
