import pytest
from django.core.management import call_command
from django.test import Client

from invoices.models import Invoice
from payments.models import Payment, Student

pytestmark = pytest.mark.django_db


def test_seed_demo_adds_invoices_and_one_converted_lead_once():
    call_command("seed_demo")
    call_command("seed_demo")

    assert sorted(Invoice.objects.values_list("status", flat=True)) == [
        "DRAFT",
        "DRAFT",
        "PARTIALLY_PAID",
    ]
    student = Student.objects.get()
    assert (student.name, student.batch.code, student.total_paid) == (
        "Arjun Nair",
        "A1-JAN-EVE-01",
        100,
    )
    assert Payment.objects.count() == 1


def test_the_admin_shows_money_rows_read_only_to_founders(founder, marketing):
    from tests.money_factories import make_converted_invoice

    invoice = make_converted_invoice(actor=marketing)
    client = Client()
    client.force_login(founder)

    page = client.get(f"/admin/invoices/invoice/{invoice.pk}/change/")
    listing = client.get("/admin/payments/payment/")

    assert (page.status_code, listing.status_code) == (200, 200)
    assert b'name="status"' not in page.content  # shown, not editable
    assert client.get("/admin/payments/student/add/").status_code == 403
