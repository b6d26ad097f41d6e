"""The connection dies at the COMMIT of a money request: the trail, the alert and the answer say
what really happened (committed, rolled back, or not known), found out from the database.

A TCP proxy (tests/dbproxy.py) sits between Django's default connection and PostgreSQL and cuts
the connection at the COMMIT of the transaction that completes the idempotency record: after
forwarding it (the server commits, the reply is lost) or instead of forwarding it (the server
never commits). Nothing here waits on a clock except the outcome check's own lock timeout.
"""

import json
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection
from django.test import Client

from alerts.models import AlertState, CriticalEvent
from alerts.services import process_critical_events
from audit import spool
from audit.models import AuditLog
from core.timefmt import school_today
from invoices.models import Invoice
from payments.models import IdempotencyRecord, Payment, Student
from tests.dbproxy import routed_through
from tests.factories import make_token
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

# The statement that completes the record, the last one of the work's transaction.
COMPLETION = b'UPDATE "payments_idempotencyrecord"'
SUCCESS_ROWS = [
    "LEAD_CONVERTED",
    "LEAD_TO_STUDENT_CONVERSION",
    "PAYMENT_RECEIVED",
    "STUDENT_CREATED",
]
HOLD_LOCK = 727201


@pytest.fixture
def proxy(db_proxy):
    return db_proxy


def through(proxy):
    """This thread's default connection through the proxy, with production-like limits that
    none of these tests comes near."""
    return routed_through(
        proxy,
        ("default",),
        call_deadline=15,
        statement_timeout=15,
        lock_timeout=15,
        idle_in_transaction_timeout=15,
    )


@pytest.fixture
def client(marketing):
    return Client(HTTP_AUTHORIZATION=f"Bearer {make_token(marketing)}")


def _convert(client, invoice, key, **headers):
    return client.post(
        f"/api/invoices/{invoice.pk}/pay-and-convert",
        json.dumps({"paidAmount": "100.00", "idempotencyKey": key}),
        content_type="application/json",
        **headers,
    )


def _rows(request_id):
    return list(
        AuditLog.objects.filter(request_id=request_id)
        .order_by("action")
        .values_list("action", "severity")
    )


def _critical_alert():
    state = AlertState.objects.filter(rule="critical_event").first()
    return None if state is None else (state.state, state.details)


def test_a_lost_reply_of_a_commit_that_happened_answers_201_and_alerts_nobody(
    client, marketing, proxy
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    proxy.cut_at_commit(COMPLETION, forward_commit=True)

    with through(proxy):
        response = _convert(client, invoice, "lost-reply-0001", HTTP_X_REQUEST_ID="req-lost-1")

    assert proxy.triggered.is_set()
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    student = Student.objects.get()
    assert (response.json()["studentId"], response.json()["invoiceStatus"]) == (
        student.student_code,
        "PARTIALLY_PAID",
    )
    replay = _convert(client, invoice, "lost-reply-0001")
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (201, "true")
    assert replay.json() == response.json()  # the answer given is the one stored
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)
    assert IdempotencyRecord.objects.get().state == "COMPLETED"
    assert _rows("req-lost-1") == [
        ("LEAD_CONVERTED", "INFO"),
        ("LEAD_TO_STUDENT_CONVERSION", "INFO"),
        ("LEAD_TO_STUDENT_CONVERSION", "WARNING"),
        ("PAYMENT_RECEIVED", "INFO"),
        ("STUDENT_CREATED", "INFO"),
    ]
    warning = AuditLog.objects.get(severity="WARNING")
    assert warning.description == (
        f"Conversion of invoice {invoice.number} was recorded, but its COMMIT reported "
        "OperationalError instead of a reply; the database shows it committed, and the client "
        "was given the stored answer"
    )
    assert (warning.entity_type, warning.entity_id) == ("Invoice", str(invoice.pk))
    assert (warning.metadata["outcome"], warning.metadata["idempotencyKey"]) == (
        "committed",
        "lost-reply-0001",
    )
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()
    assert not CriticalEvent.objects.exists()
    assert _critical_alert() is None


def test_a_commit_that_never_reached_the_server_is_one_critical_rolled_back_row_and_alert(
    client, marketing, proxy
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    proxy.cut_at_commit(COMPLETION, forward_commit=False)

    with through(proxy):
        response = _convert(client, invoice, "lost-commit-001", HTTP_X_REQUEST_ID="req-lost-2")

    assert proxy.triggered.is_set()
    # A lost connection is the database's failure: 503, "try again", and the key is free for it.
    assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")
    assert (Student.objects.count(), Payment.objects.count()) == (0, 0)
    assert Invoice.objects.get().status == "DRAFT"
    assert IdempotencyRecord.objects.count() == 0  # released: the same key may be retried
    # One row, not a DATABASE_ERROR row besides it.
    assert _rows("req-lost-2") == [("LEAD_TO_STUDENT_CONVERSION", "CRITICAL")]
    row = AuditLog.objects.get(request_id="req-lost-2")
    assert row.description == (
        f"Conversion of invoice {invoice.number} failed and was rolled back: OperationalError"
    )
    assert {k: row.metadata[k] for k in ("invoiceNumber", "paidAmount", "outcome")} == {
        "invoiceNumber": invoice.number,
        "paidAmount": "100.00",
        "outcome": "rolled_back",
    }
    assert _critical_alert() == (
        "firing",
        {
            "action": "LEAD_TO_STUDENT_CONVERSION",
            "entity": f"Invoice {invoice.pk}",
            "auditId": row.pk,
            "requestId": "req-lost-2",
            "outcome": "rolled_back",
        },
    )

    retried = _convert(client, invoice, "lost-commit-001")

    assert retried.status_code == 201
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)


def test_a_later_payment_whose_reply_is_lost_answers_201_with_a_warning_row(
    client, marketing, proxy
):
    invoice = make_converted_invoice(actor=marketing, amounts=("134.00",), paid="34.00")
    proxy.cut_at_commit(COMPLETION, forward_commit=True)

    with through(proxy):
        response = client.post(
            f"/api/invoices/{invoice.pk}/payments",
            json.dumps({"amount": "100.00", "idempotencyKey": "lost-later-01"}),
            content_type="application/json",
            HTTP_X_REQUEST_ID="req-lost-3",
        )

    assert proxy.triggered.is_set()
    assert (response.status_code, response.json()["invoiceStatus"]) == (201, "PAID")
    assert Payment.objects.count() == 2
    assert _rows("req-lost-3") == [("PAYMENT_RECEIVED", "INFO"), ("PAYMENT_RECEIVED", "WARNING")]
    warning = AuditLog.objects.get(severity="WARNING")
    assert (warning.metadata["outcome"], warning.metadata["amount"]) == ("committed", "100.00")
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()


@contextmanager
def commits_held(owner):
    """A deferred trigger makes the COMMIT that completes a record wait for an advisory lock
    this test holds: the transaction stays neither committed nor rolled back until released.
    The trigger is the owner's to create; the application role may not."""
    with owner.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION test_hold_commit() RETURNS trigger AS $$
            BEGIN PERFORM pg_advisory_xact_lock({HOLD_LOCK}); RETURN NULL; END $$
            LANGUAGE plpgsql;
            CREATE CONSTRAINT TRIGGER test_hold_commit AFTER UPDATE ON payments_idempotencyrecord
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_hold_commit();
            """
        )
    holder = _direct_connection()
    holder.execute("SELECT pg_advisory_lock(%s)", [HOLD_LOCK])
    try:
        yield holder
    finally:
        holder.close()
        with owner.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER test_hold_commit ON payments_idempotencyrecord;"
                "DROP FUNCTION test_hold_commit();"
            )


def _direct_connection():
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        autocommit=True,
    )


def _state_after_transaction_ends(direct, key):
    # The transaction that completed the record holds its row: FOR UPDATE waits for it to end
    # and then reads what it left. No polling, no sleep.
    with direct.transaction():
        [(state,)] = direct.execute(
            "SELECT state FROM payments_idempotencyrecord WHERE key = %s FOR UPDATE", [key]
        ).fetchall()
    return state


def _wait_until_settled(holder, key):
    holder.execute("SELECT pg_advisory_unlock(%s)", [HOLD_LOCK])
    return _state_after_transaction_ends(holder, key)


def test_a_commit_still_running_when_its_reply_is_lost_is_outcome_unknown_and_503(
    client, marketing, proxy, owner_connection
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    proxy.cut_at_commit(COMPLETION, forward_commit=True)

    with commits_held(owner_connection) as holder:
        with through(proxy):
            response = _convert(client, invoice, "unknown-0001", HTTP_X_REQUEST_ID="req-lost-4")

        assert proxy.triggered.is_set()
        assert (response.status_code, response["Retry-After"]) == (503, "5")
        assert response.json() == {
            "error": response.json()["error"],
            "code": "service_unavailable",
            "details": {},
            "requestId": "req-lost-4",
        }
        assert "same idempotency key" in response.json()["error"]
        row = AuditLog.objects.get(request_id="req-lost-4")
        assert (row.action, row.severity, row.entity_type, row.entity_id) == (
            "LEAD_TO_STUDENT_CONVERSION",
            "CRITICAL",
            "Invoice",
            str(invoice.pk),
        )
        assert row.description == (
            f"Conversion of invoice {invoice.number}: outcome unknown. Its COMMIT reported "
            "OperationalError instead of a reply, and the database could not be asked whether "
            "it committed (OperationalError); check the invoice before recording this payment "
            "again"
        )
        assert row.metadata == {
            "invoiceId": invoice.pk,
            "invoiceNumber": invoice.number,
            "leadId": invoice.lead_id,
            "paidAmount": "100.00",
            "currency": "EUR",
            "method": "BANK_TRANSFER",
            "transactionId": "",
            "batchId": None,
            "paidOn": school_today().isoformat(),
            "idempotencyKey": "unknown-0001",
            "outcome": "unknown",
            "outcomeCheckError": "OperationalError",
        }
        assert _critical_alert()[1]["outcome"] == "unknown"
        # The key is kept while the outcome is open, so no retry can record the money twice.
        assert IdempotencyRecord.objects.get().claim_token

        assert _wait_until_settled(holder, "unknown-0001") == "COMPLETED"

    retried = _convert(client, invoice, "unknown-0001")
    assert (retried.status_code, retried["Idempotent-Replayed"]) == (201, "true")
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)
    assert (
        sorted(
            AuditLog.objects.filter(request_id="req-lost-4", severity="INFO").values_list(
                "action", flat=True
            )
        )
        == SUCCESS_ROWS
    )


def test_with_the_database_gone_after_a_lost_reply_the_row_is_spooled_and_a_retry_tells_the_truth(
    client, marketing, proxy, caplog
):
    invoice = make_invoice(actor=marketing, amounts=("134.00",))
    proxy.cut_at_commit(COMPLETION, forward_commit=True, refuse_new=True)

    with through(proxy):
        response = _convert(client, invoice, "db-gone-00001", HTTP_X_REQUEST_ID="req-lost-5")

    assert proxy.triggered.is_set()
    assert (response.status_code, response.json()["code"], response.json()["requestId"]) == (
        503,
        "service_unavailable",
        "req-lost-5",
    )
    # The failure row could not be written either: it waits in the spool, and the log says so.
    assert (
        "audit write failed: action=LEAD_TO_STUDENT_CONVERSION severity=CRITICAL "
        "error=OperationalError spooled="
    ) in caplog.text
    assert not AuditLog.objects.filter(severity__in=["ERROR", "CRITICAL"]).exists()
    # The cut connection's backend commits on its own time; wait for its transaction to end.
    with _direct_connection() as direct:
        assert _state_after_transaction_ends(direct, "db-gone-00001") == "COMPLETED"
    assert (Student.objects.count(), Payment.objects.count()) == (1, 1)

    assert spool.replay() == 1
    process_critical_events()

    row = AuditLog.objects.get(severity="CRITICAL")
    assert (row.action, row.entity_id, row.request_id) == (
        "LEAD_TO_STUDENT_CONVERSION",
        str(invoice.pk),
        "req-lost-5",
    )
    assert {k: row.metadata[k] for k in ("invoiceNumber", "paidAmount", "idempotencyKey")} == {
        "invoiceNumber": invoice.number,
        "paidAmount": "100.00",
        "idempotencyKey": "db-gone-00001",
    }
    assert (row.metadata["outcome"], row.metadata["outcomeCheckError"]) == (
        "unknown",
        "OperationalError",
    )
    assert _critical_alert()[1]["outcome"] == "unknown"

    retried = _convert(client, invoice, "db-gone-00001")

    assert (retried.status_code, retried["Idempotent-Replayed"]) == (201, "true")
    assert retried.json()["studentId"] == Student.objects.get().student_code
    assert Payment.objects.count() == 1
