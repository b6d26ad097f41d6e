"""What a pay-and-convert request sends to the database, statement by statement, and that the
answer it builds from the rows it holds (instead of reading them again) is the one a fresh read
gives."""

import json
import re

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from invoices.selectors import invoice_get
from payments.models import IdempotencyRecord, Payment, Student
from payments.responses import money_result_body
from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

# One pay-and-convert over the API, in order. A change here is a change of the hot path: say
# why in the commit, and measure it with bench/pay_and_convert.py.
STATEMENTS = [
    "SELECT accounts_apitoken",  # the API token and its user (authentication)
    "SELECT invoices_invoice",  # number, lead and currency, for the request's failure rows
    "INSERT payments_idempotencyrecord",  # the claim, committed on its own (autocommit)
    "BEGIN",
    "SELECT invoices_invoice",  # invoice and lead, locked by one FOR UPDATE; WhatsApp holder
    "SELECT invoices_invoiceitem",  # the items, for the answer and the student's level
    "WITH leads_lead",  # paid amount and status of the invoice, then the lead converted
    "WITH payments_payment",  # the student under a provisional code, then the payment
    # From here to COMMIT every other conversion of the year waits on the counter's row.
    "WITH payments_student",  # the code drawn (the counter's upsert) and put in its place
    "INSERT audit_auditlog",  # the four rows, one INSERT
    "UPDATE payments_idempotencyrecord",  # completed, with the answer
    "COMMIT",
]


def _shape(sql):
    verb = sql.split(None, 1)[0].upper()
    while re.search(r"\([^()]*\)", sql):  # subqueries and column lists out: the main table
        sql = re.sub(r"\([^()]*\)", "", sql)
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"', sql)
    return f"{verb} {table.group(1)}" if table else verb


def _convert(client, invoice, key):
    return client.post(
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        json.dumps({"paidAmount": "50.00", "idempotencyKey": key}),
        content_type="application/json",
    )


@pytest.mark.postgres
def test_pay_and_convert_sends_exactly_its_ten_statements_and_draws_the_code_late(
    marketing_client, marketing
):
    _convert(marketing_client, make_invoice(actor=marketing), "warm-up-key-01")  # caches filled
    invoice = make_invoice(actor=marketing)

    with (
        CaptureQueriesContext(connection) as default,
        CaptureQueriesContext(connections["audit"]) as independent,
    ):
        response = _convert(marketing_client, invoice, "counted-key-01")

    assert response.status_code == 201
    assert [_shape(q["sql"]) for q in default.captured_queries] == STATEMENTS
    assert len(default.captured_queries) == 12  # 10 statements, the BEGIN and the COMMIT
    assert independent.captured_queries == []  # no row had to outlive the transaction


def test_the_stored_answer_is_what_reading_the_rows_afresh_gives(marketing_client, marketing):
    invoice = make_invoice(actor=marketing, amounts=("134.00", "40.00"))

    response = _convert(marketing_client, invoice, "fresh-read-key-1")

    assert response.status_code == 201
    student, payment = Student.objects.get(), Payment.objects.get()
    fresh = money_result_body(invoice=invoice_get(invoice.pk), student=student, payment=payment)
    stored = IdempotencyRecord.objects.get().response_body
    assert stored == json.loads(json.dumps(fresh, cls=DjangoJSONEncoder))
    assert not student.student_code.startswith("~")  # the provisional code never commits
    assert response.json()["invoice"]["studentId"] == student.student_code


@pytest.mark.postgres
def test_a_failure_after_the_code_was_drawn_gives_the_code_back(
    marketing_client, marketing, owner_connection
):
    invoice = make_invoice(actor=marketing)
    with owner_connection.cursor() as cursor:
        # The completion, the last statement after the draw, is refused by the database.
        cursor.execute(
            "ALTER TABLE payments_idempotencyrecord ADD CONSTRAINT test_refuse "
            "CHECK (state <> 'COMPLETED')"
        )
    try:
        failed = _convert(marketing_client, invoice, "after-draw-key-1")
    finally:
        with owner_connection.cursor() as cursor:
            cursor.execute("ALTER TABLE payments_idempotencyrecord DROP CONSTRAINT test_refuse")

    assert failed.status_code == 500
    assert (Student.objects.count(), Payment.objects.count()) == (0, 0)
    assert IdempotencyRecord.objects.count() == 0

    assert _convert(marketing_client, invoice, "after-draw-key-1").status_code == 201
    assert Student.objects.get().student_code.endswith("-0001")
