"""The same stall against real gunicorn sync workers (subprocesses), as production runs them:
the worker that was waiting on the database answers 503 in seconds instead of being pinned until
gunicorn kills it, and the process keeps serving /livez while the database is still stalled."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from django.db import connections

from audit import spool
from audit.models import AuditLog
from payments.models import Payment, Student
from tests.factories import make_token, make_user
from tests.gunicorn import http_request, serving
from tests.money_factories import make_invoice

PAYMENT_INSERT = b'INSERT INTO "payments_payment"'
FEW_SECONDS = 10


@pytest.fixture
def gunicorn(transactional_db, db_proxy, ingest, tmp_path, settings):
    """Two sync workers whose database connections all go through the proxy."""
    db = connections["default"].settings_dict
    settings.AUDIT_SPOOL_DIR = tmp_path / "spool"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CI", "REDIS_URL", "DEBUG")},
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{db_proxy.port}/{db['NAME']}",
        "DB_CALL_DEADLINE": "1",
        "DB_STATEMENT_TIMEOUT": "0.8",
        "DB_LOCK_TIMEOUT": "0.5",
        "DB_IDLE_IN_TRANSACTION_TIMEOUT": "1",
        "AUDIT_SPOOL_DIR": str(settings.AUDIT_SPOOL_DIR),
        "SECRET_KEY": "gunicorn-stall-test-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SENTRY_DSN": ingest.dsn,
        "SENTRY_ENVIRONMENT": "production",
        "LOG_LEVEL": "WARNING",
    }
    with serving(env, tmp_path / "gunicorn.log") as port:
        yield port


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_gunicorn_worker_answers_503_when_the_database_stalls_and_keeps_serving_livez(
    gunicorn, db_proxy, ingest
):
    marketing = make_user()
    token = make_token(marketing)
    invoice = make_invoice(actor=marketing)
    db_proxy.stall_on(PAYMENT_INSERT)
    result = {}

    def pay() -> None:
        started = time.monotonic()
        result["answer"] = http_request(
            gunicorn,
            "POST",
            f"/api/invoices/{invoice.pk}/pay-and-convert",
            body=json.dumps({"paidAmount": "100.00", "idempotencyKey": "gunicorn-key-0001"}),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "X-Request-ID": "gunicorn-stall-1",
            },
        )
        result["elapsed"] = time.monotonic() - started

    payer = threading.Thread(target=pay)
    payer.start()
    assert db_proxy.triggered.wait(30), "the request never reached the payment insert"
    payer.join(30)

    status, headers, body = result["answer"]
    assert status == 503
    assert json.loads(body) == {
        "error": json.loads(body)["error"],
        "code": "service_unavailable",
        "requestId": "gunicorn-stall-1",
    }
    assert headers["X-Request-ID"] == "gunicorn-stall-1"
    assert headers["Retry-After"] == "5"
    assert result["elapsed"] < FEW_SECONDS

    # Still stalled: the process answers livez (no database) and says it is not ready.
    assert http_request(gunicorn, "GET", "/api/system/livez", timeout=5)[0] == 200
    assert http_request(gunicorn, "GET", "/api/system/readyz", timeout=5)[0] == 503

    db_proxy.resume()
    assert (Student.objects.count(), Payment.objects.count()) == (0, 0)
    [event] = [
        e
        for e in ingest.events()
        if e.get("tags", {}).get("request_id") == "gunicorn-stall-1" and e.get("exception")
    ]
    assert event["exception"]["values"][-1]["type"] == "DatabaseStalled"
    assert spool.replay() == 1
    [row] = AuditLog.objects.filter(severity="CRITICAL")
    assert (row.action, row.request_id) == ("LEAD_TO_STUDENT_CONVERSION", "gunicorn-stall-1")
