"""Reconciliation of the money rows with the audit trail (monitoring/reconciliation.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import CriticalEvent
from audit.models import Action, AuditLog, Severity
from invoices.models import Invoice
from monitoring import checks
from monitoring.reconciliation import reconcile
from monitoring.tasks import reconcile as reconcile_task
from payments.models import Payment, Student
from payments.services import payment_record
from tests.money_factories import make_converted_invoice, make_invoice


def _flows(actor) -> dict[str, Invoice]:
    """A clean set of flows: an open invoice, a partly paid one with a later payment, a paid one."""
    open_invoice = make_invoice(actor=actor)
    partly = make_converted_invoice(actor=actor, paid="30.00", amounts=("100.00",))
    paid = make_converted_invoice(actor=actor, paid="40.00", amounts=("100.00",))
    payment_record(
        invoice=paid, amount=Decimal("60.00"), idempotency_key=f"k-{uuid.uuid4()}", actor=actor
    )
    return {"open": open_invoice, "partly": partly, "paid": paid}


def _run(capsys) -> tuple[int, list[str]]:
    try:
        call_command("reconcile")
    except CommandError as exc:
        out = capsys.readouterr().out
        return 1, [*out.splitlines(), str(exc)]
    return 0, capsys.readouterr().out.splitlines()


@pytest.mark.django_db
def test_clean_flows_agree_and_the_command_exits_0(founder, capsys):
    _flows(founder)
    code, lines = _run(capsys)
    assert code == 0
    assert lines == [lines[-1]]
    assert lines[-1].startswith("all agree: 3 payments, 2 students, 3 invoices checked")
    row = AuditLog.objects.get(action=Action.RECONCILIATION)
    assert row.severity == Severity.INFO
    assert row.source == "COMMAND"
    assert row.metadata["mismatchCount"] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_payment_changed_by_raw_sql_is_named(founder, owner_connection, capsys):
    invoices = _flows(founder)
    payment = Payment.objects.filter(invoice=invoices["paid"]).order_by("id").last()
    audit_id = AuditLog.objects.get(
        action=Action.PAYMENT_RECEIVED, entity_type="Payment", entity_id=str(payment.pk)
    ).pk
    with owner_connection.cursor() as cursor:
        cursor.execute("UPDATE payments_payment SET amount = 6.00 WHERE id = %s", [payment.pk])

    code, lines = _run(capsys)

    assert code == 1
    student = payment.student_id
    invoice = invoices["paid"].pk
    assert lines[:-1] == [
        f"payment {payment.pk}: is EUR 6.00, its PAYMENT_RECEIVED audit row {audit_id} says "
        "EUR 60.00",
        f"invoice {invoice}: paid amount is 100.00, its payments add up to 46.00",
        f"student {student}: total paid is 100.00, their payments add up to 46.00",
    ]
    assert lines[-1].startswith("3 mismatches")
    row = AuditLog.objects.filter(action=Action.RECONCILIATION).get()
    assert row.severity == Severity.CRITICAL
    assert row.metadata["mismatchCount"] == 3
    assert row.metadata["mismatchesByKind"] == {"payment": 1, "invoice": 1, "student": 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_payment_whose_audit_row_never_came_is_named(founder, owner_connection):
    invoices = _flows(founder)
    invoice = invoices["partly"]
    student = Student.objects.get(lead_id=invoice.lead_id)
    # Money recorded behind the services: the books move, the trail does not.
    with owner_connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_payment (student_id, invoice_id, amount, currency, method, "
            "transaction_id, status, paid_at, paid_on, idempotency_key, created_at) VALUES "
            "(%s, %s, 20.00, 'EUR', 'CASH', '', 'COMPLETED', now(), current_date, 'raw-sql-1', "
            "now()) "
            "RETURNING id",
            [student.pk, invoice.pk],
        )
        (payment_id,) = cursor.fetchone()
        cursor.execute(
            "UPDATE invoices_invoice SET paid_amount = paid_amount + 20 WHERE id = %s",
            [invoice.pk],
        )
        cursor.execute(
            "UPDATE payments_student SET total_paid = total_paid + 20 WHERE id = %s",
            [student.pk],
        )

    result = reconcile()

    assert [m.line() for m in result.mismatches] == [
        f"payment {payment_id}: no PAYMENT_RECEIVED audit row"
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rows_inserted_behind_the_services_lack_their_audit_rows(founder, owner_connection):
    _flows(founder)
    lead_id = make_invoice(actor=founder).lead_id
    with owner_connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO invoices_invoice (number, year, sequence, lead_id, status, currency, "
            "subtotal, discount, total_amount, payable_now, paid_amount, issue_date, due_date, "
            "notes, cancel_reason, send_token, created_at, updated_at) VALUES "
            "('PB-1999-0001', 1999, 1, %s, 'PAID', 'EUR', 10, 0, 10, 10, 0, now(), now(), "
            "'', '', '', now(), now()) RETURNING id",
            [lead_id],
        )
        (invoice_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO payments_student (student_code, lead_id, name, email, whatsapp, level, "
            "currency, total_amount, total_paid, payment_status, created_at, updated_at) VALUES "
            "('STU-1999-0001', %s, 'X', '', '+4915166419430', '', 'EUR', 10, 0, 'PENDING', "
            "now(), now()) RETURNING id",
            [lead_id],
        )
        (student_id,) = cursor.fetchone()

    lines = [m.line() for m in reconcile().mismatches]

    assert lines == [
        f"student {student_id}: no STUDENT_CREATED audit row",
        f"student {student_id}: no LEAD_TO_STUDENT_CONVERSION audit row names it",
        f"invoice {invoice_id}: no INVOICE_GENERATED audit row",
        f"invoice {invoice_id}: is PAID without any payment",
    ]


@pytest.mark.django_db
def test_reconciliation_is_a_fixed_number_of_queries(founder):
    _flows(founder)
    with CaptureQueriesContext(connection) as small:
        reconcile()
    for _ in range(3):
        make_converted_invoice(actor=founder)
    with CaptureQueriesContext(connection) as larger:
        reconcile()
    # Three counts and seven comparisons (and the transaction's settings), whatever the size.
    comparisons = [q for q in small.captured_queries if "SELECT" in q["sql"]]
    assert len(comparisons) == 10
    assert len(larger.captured_queries) == len(small.captured_queries)


# --- the schedule, the health check and the alert --------------------------------------------


HEALTH = "/api/system/health"


@pytest.mark.django_db
def test_health_reports_the_latest_run_without_reconciling(founder, founder_client, settings):
    settings.FOUNDER_ALERT_EMAILS = ["founders@example.com"]
    assert founder_client.get(HEALTH).json()["checks"]["reconciliation"] == {
        "status": "healthy",
        "message": "No reconciliation has run yet",
        "lastRun": None,
    }
    _flows(founder)
    reconcile_task.apply()  # as a worker runs it for beat
    row = AuditLog.objects.get(action=Action.RECONCILIATION)
    checks.reset_health_cache()
    body = founder_client.get(HEALTH).json()
    check = body["checks"]["reconciliation"]
    assert check["status"] == "healthy"
    assert check["auditId"] == row.pk
    assert check["mismatches"] == 0
    assert check["ranBy"] == "beat"


@pytest.mark.django_db
def test_a_mismatch_is_unhealthy_and_a_critical_alert(founder, founder_client, settings):
    settings.FOUNDER_ALERT_EMAILS = ["founders@example.com"]
    invoices = _flows(founder)
    # The application role may change a payment (only the trail is append-only): a bug or a
    # hand-made fix that bypassed the services.
    Payment.objects.filter(invoice=invoices["partly"]).update(amount=Decimal("31.00"))

    assert reconcile_task() == 3

    row = AuditLog.objects.get(action=Action.RECONCILIATION)
    assert row.severity == Severity.CRITICAL
    assert CriticalEvent.objects.filter(audit_id=row.pk).exists()
    response = founder_client.get(HEALTH)
    assert response.status_code == 503
    check = response.json()["checks"]["reconciliation"]
    assert check["status"] == "unhealthy"
    assert check["mismatches"] == 3


@pytest.mark.django_db
def test_an_old_result_is_degraded_when_beat_should_rerun_it(founder, settings):
    settings.HEALTH_EXPECT_HEARTBEAT = True
    settings.RECONCILIATION_SECONDS = 60
    reconcile_task()
    later = timezone.now() + timedelta(seconds=181)
    with time_machine.travel(later, tick=False):
        assert checks.check_reconciliation().status == "degraded"
    assert checks.check_reconciliation().status == "healthy"


@pytest.mark.django_db
def test_dry_run_prints_the_same_and_records_nothing(founder, capsys):
    invoices = _flows(founder)
    Payment.objects.filter(invoice=invoices["partly"]).update(amount=Decimal("31.00"))
    with pytest.raises(CommandError, match=r"^3 mismatches"):
        call_command("reconcile", "--dry-run")
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert not AuditLog.objects.filter(action=Action.RECONCILIATION).exists()
