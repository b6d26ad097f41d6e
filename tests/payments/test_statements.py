"""The conversion's statements written out for PostgreSQL (payments.statements, core.rows,
invoices.numbering.draw_next_code_into) read and write what the ORM's own would."""

import json

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from invoices.models import Invoice
from invoices.numbering import STUDENT_CODE_PREFIX, draw_next_code_into, student_code
from payments.models import Student, StudentCounter
from payments.statements import _locked_invoice_orm, locked_invoice
from tests.factories import make_lead
from tests.money_factories import make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _as_read(invoice):
    return (
        model_to_dict(invoice),
        invoice.whatsapp_holder,
        model_to_dict(invoice.lead),
        [model_to_dict(item) for item in invoice.items.all()],
    )


def test_the_written_out_locked_read_gives_what_the_orm_gave(marketing, marketing_client):
    # given: an invoice of three items whose lead's number a student already has
    holder_lead = make_lead(whatsapp="+919847000001")
    paid = make_invoice(actor=marketing, lead=holder_lead)
    marketing_client.post(
        f"/api/invoices/{paid.pk}/pay-and-convert",
        json.dumps({"paidAmount": "134.00", "idempotencyKey": "holder-key-01"}),
        content_type="application/json",
    )
    twin = make_lead(whatsapp="+919847000001")
    invoice = make_invoice(actor=marketing, lead=twin, amounts=("10.00", "20.00", "30.00"))

    # when
    with transaction.atomic():
        written_out = locked_invoice(invoice.pk)
        orm = _locked_invoice_orm(invoice.pk)

    # then
    assert _as_read(written_out) == _as_read(orm)
    assert written_out.whatsapp_holder == Student.objects.get().student_code
    assert [i.amount for i in written_out.items.all()] == [i.amount for i in orm.items.all()]


def test_a_missing_invoice_is_does_not_exist_as_with_the_orm(db):
    with transaction.atomic(), pytest.raises(Invoice.DoesNotExist):
        locked_invoice(987654321)


def test_a_code_past_four_digits_is_spelled_as_student_code_spells_it(marketing_client, marketing):
    year = timezone.localdate().year
    StudentCounter.objects.create(year=year, last_number=9999)
    invoice = make_invoice(actor=marketing)

    response = marketing_client.post(
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        json.dumps({"paidAmount": "134.00", "idempotencyKey": "five-digits-1"}),
        content_type="application/json",
    )

    assert response.status_code == 201
    assert Student.objects.get().student_code == student_code(year, 10000)
    assert response.json()["studentId"] == f"STU-{year}-10000"


def test_drawing_for_a_row_that_is_gone_raises_and_the_draw_rolls_back(db):
    year = timezone.localdate().year
    StudentCounter.objects.create(year=year, last_number=7)
    gone = Student(pk=987654321)

    with pytest.raises(RuntimeError, match=r"no payments\.Student"), transaction.atomic():
        draw_next_code_into(
            StudentCounter, year, prefix=STUDENT_CODE_PREFIX, row=gone, field="student_code"
        )

    assert StudentCounter.objects.get(year=year).last_number == 7
