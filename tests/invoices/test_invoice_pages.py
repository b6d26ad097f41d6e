"""The invoice pages: what the edit form shows comes back unchanged when saved untouched."""

import datetime
from decimal import Decimal

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


def _new_invoice_form(rows, **fields):
    data = {
        "currency": "INR",
        "discount": "",
        "payable_now": "",
        "due_date": "",
        "notes": "",
        "items-TOTAL_FORMS": str(len(rows)),
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "20",
        **fields,
    }
    for i, (description, amount) in enumerate(rows):
        data[f"items-{i}-description"] = description
        data[f"items-{i}-amount"] = amount
    return data


def test_any_number_of_rows_is_taken_with_amounts_as_people_write_them(staff):
    from tests.factories import make_lead

    lead = make_lead()
    rows = [(f"Module {i}", "2,000") for i in range(11)] + [("Exam fee", "1,00,000.5")]

    response = staff.post(
        f"/invoices/new/for-lead/{lead.pk}/", _new_invoice_form(rows, discount="1,000")
    )

    assert response.status_code == 302
    invoice = Invoice.objects.get()
    assert invoice.items.count() == 12
    assert (invoice.subtotal, invoice.discount, invoice.total_amount) == (
        Decimal("122000.50"),
        Decimal("1000.00"),
        Decimal("121000.50"),
    )


def test_a_bad_row_among_many_is_refused_beside_it_and_nothing_is_written(staff):
    from tests.factories import make_lead

    lead = make_lead()
    rows = [("A1", "2,000"), ("A2", "2,00"), ("B1", "abc")]
    rows_before = AuditLog.objects.count()

    response = staff.post(f"/invoices/new/for-lead/{lead.pk}/", _new_invoice_form(rows))

    page = response.content.decode()
    assert response.status_code == 400
    assert (
        'id="id_items-1-amount_error">Put commas only between groups of digits, such as 2,000 '
        "or 1,00,000.</p>" in page
    )
    assert 'id="id_items-2-amount_error">Enter a plain amount' in page
    assert 'id="id_items-0-amount_error"' not in page
    assert (Invoice.objects.count(), AuditLog.objects.count()) == (0, rows_before)


def test_more_than_twenty_rows_are_refused(staff):
    from tests.factories import make_lead

    lead = make_lead()

    response = staff.post(
        f"/invoices/new/for-lead/{lead.pk}/", _new_invoice_form([("x", "1")] * 21)
    )

    assert response.status_code == 400
    assert "Please submit at most 20 forms." in response.content.decode()
    assert Invoice.objects.count() == 0


def test_without_the_script_add_and_remove_row_buttons_reshow_the_form_and_save_nothing(staff):
    from tests.factories import make_lead

    lead = make_lead()
    url = f"/invoices/new/for-lead/{lead.pk}/"
    rows = [("First", "100"), ("Second", "200")]

    added = staff.post(url, {**_new_invoice_form(rows), "add_row": "1"})
    removed = staff.post(url, {**_new_invoice_form(rows), "remove_row": "0"})

    assert added.status_code == 200
    page = added.content.decode()
    assert 'name="items-TOTAL_FORMS" value="3"' in page
    assert 'name="items-1-amount" value="200"' in page
    assert 'name="items-2-amount"' in page
    page = removed.content.decode()
    assert 'name="items-TOTAL_FORMS" value="1"' in page
    assert 'name="items-0-description" value="Second"' in page
    assert Invoice.objects.count() == 0


def test_a_new_invoice_starts_from_the_lead_s_level_then_its_last_invoice(staff, marketing):
    from tests.factories import make_lead

    lead = make_lead(interested_level="B1")
    first = staff.get(f"/invoices/new/for-lead/{lead.pk}/").content.decode()
    invoice = make_invoice(actor=marketing, lead=lead)
    InvoiceItem.objects.filter(invoice=invoice).update(level="A2", month="March", batch="Evening")
    again = staff.get(f"/invoices/new/for-lead/{lead.pk}/").content.decode()

    assert '<option value="B1" selected>B1</option>' in first
    assert '<option value="A2" selected>A2</option>' in again
    assert 'name="items-0-month" value="March"' in again
    assert 'name="items-0-batch" value="Evening"' in again
    assert '<option value="Evening"></option>' in again  # offered to every row
