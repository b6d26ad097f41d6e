"""Money operations have their own status: /api/system/health/money and the `moneyOperations`
check. Failing payments make it unhealthy (503) while the site's own health stays 200, degraded."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditLog
from monitoring.checks import reset_health_cache
from tests.money_factories import make_invoice

pytestmark = pytest.mark.django_db

HEALTH = "/api/system/health"
MONEY = "/api/system/health/money"


def _failed(audit_rows, n=1, *, action="LEAD_TO_STUDENT_CONVERSION", at=None, severity="CRITICAL"):
    return audit_rows(action=action, at=at, **{severity: n})


def test_no_failed_money_operation_is_healthy(founder_client):
    response = founder_client.get(MONEY)
    assert (response.status_code, response["X-Health-Status"]) == (200, "healthy")
    assert response.json()["checks"]["moneyOperations"] == {
        "status": "healthy",
        "message": "No money operation failed",
        "failures": 0,
        "failedInARow": 0,
        "threshold": "2 in a row",
        "lastFailure": None,
        "lastSuccess": None,
        "period": "last 60 minutes",
    }


def test_one_failed_money_operation_is_degraded_on_both_reports(founder_client, audit_rows):
    [row] = _failed(audit_rows)

    money = founder_client.get(MONEY)
    site = founder_client.get(HEALTH)

    assert (money.status_code, money["X-Health-Status"]) == (200, "degraded")
    check = money.json()["checks"]["moneyOperations"]
    assert (check["status"], check["failures"], check["failedInARow"]) == ("degraded", 1, 1)
    assert check["lastFailure"] == row.created_at.isoformat()
    assert (site.status_code, site.json()["status"]) == (200, "degraded")


def test_failing_money_operations_make_money_unhealthy_while_the_site_stays_up(
    founder_client, anon_client, audit_rows
):
    _failed(audit_rows, 1, action="LEAD_TO_STUDENT_CONVERSION")
    _failed(audit_rows, 1, action="PAYMENT_RECEIVED", severity="ERROR")

    money = founder_client.get(MONEY)
    site = founder_client.get(HEALTH)

    assert (money.status_code, money["X-Health-Status"], money["Retry-After"]) == (
        503,
        "unhealthy",
        "30",
    )
    check = money.json()["checks"]["moneyOperations"]
    assert (check["status"], check["message"]) == (
        "unhealthy",
        "The last 2 money operations failed",
    )
    # The site serves: its report says degraded, and its copy of the check no worse.
    assert (site.status_code, site["X-Health-Status"]) == (200, "degraded")
    assert site.json()["checks"]["moneyOperations"]["status"] == "degraded"
    assert site.json()["checks"]["moneyOperations"]["failedInARow"] == 2
    assert anon_client.get(MONEY).status_code == 503


def test_a_success_after_failures_leaves_money_degraded_not_unhealthy(founder_client, audit_rows):
    earlier = timezone.now() - timedelta(minutes=5)
    _failed(audit_rows, 3, at=earlier)
    audit_rows(action="PAYMENT_RECEIVED", INFO=1)

    response = founder_client.get(MONEY)

    check = response.json()["checks"]["moneyOperations"]
    assert response.status_code == 200
    assert (check["status"], check["failures"], check["failedInARow"]) == ("degraded", 3, 0)
    assert check["message"] == "3 money operation(s) failed; the latest succeeded"


def test_only_failures_of_money_actions_within_the_window_count(
    founder_client, audit_rows, settings
):
    settings.HEALTH_MONEY_WINDOW_MINUTES = 30
    _failed(audit_rows, 5, at=timezone.now() - timedelta(minutes=31))
    _failed(audit_rows, 5, action="EMAIL_FAILED", severity="ERROR")
    # A refused second conversion and a COMMIT that did commit are WARNING rows, not failures.
    _failed(audit_rows, 5, severity="WARNING")

    check = founder_client.get(MONEY).json()["checks"]["moneyOperations"]

    assert (check["status"], check["failures"], check["period"]) == (
        "healthy",
        0,
        "last 30 minutes",
    )


def test_the_threshold_in_a_row_is_a_setting(founder_client, audit_rows, settings):
    settings.HEALTH_MONEY_FAILURES_UNHEALTHY = 3
    _failed(audit_rows, 2)
    assert founder_client.get(MONEY).status_code == 200
    _failed(audit_rows, 1)
    reset_health_cache()
    assert founder_client.get(MONEY).status_code == 503


@pytest.mark.postgres
def test_a_database_that_refuses_connections_makes_money_unhealthy(
    founder_client, refused_database
):
    response = founder_client.get(MONEY)
    assert (response.status_code, response["X-Health-Status"]) == (503, "unhealthy")
    assert response.json()["checks"] == {
        "database": {"status": "unhealthy", "message": "Database unavailable (OperationalError)"},
        "moneyOperations": {"status": "unhealthy", "message": "Skipped: database unavailable"},
    }


# --- who sees what ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona_client", ["anonymous", "teacher", "marketing"], indirect=True)
def test_everyone_but_founders_and_the_token_gets_the_summary(persona_client):
    response = persona_client.get(MONEY)
    assert response.status_code == 200
    assert sorted(response.json()) == ["status", "timestamp"]
    assert response["X-Health-Status"] == "healthy"


def test_the_health_token_and_founders_get_the_checks(anon_client, founder_client, settings):
    settings.HEALTH_CHECK_TOKEN = "uptime-secret-0123456789"
    by_token = anon_client.get(MONEY, HTTP_AUTHORIZATION="Bearer uptime-secret-0123456789")
    assert list(by_token.json()["checks"]) == ["database", "moneyOperations"]
    assert list(founder_client.get(MONEY).json()["checks"]) == ["database", "moneyOperations"]


# --- real failing payments --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_payments_the_database_refuses_page_on_money_and_recover(
    marketing_client, founder_client, marketing, payment_insert_fails
):
    invoices = [make_invoice(actor=marketing, amounts=("134.00",)) for _ in range(3)]

    def pay(invoice, key):
        return marketing_client.post(
            f"/api/invoices/{invoice.pk}/pay-and-convert",
            json.dumps({"paidAmount": "100.00", "idempotencyKey": key}),
            content_type="application/json",
        )

    assert pay(invoices[0], "money-health-0001").status_code == 500
    assert pay(invoices[1], "money-health-0002").status_code == 500
    assert founder_client.get(MONEY).status_code == 503
    assert founder_client.get(HEALTH).status_code == 200

    payment_insert_fails()  # lifted: the next payment goes through
    assert pay(invoices[2], "money-health-0003").status_code == 201
    reset_health_cache()
    money = founder_client.get(MONEY)
    assert (money.status_code, money["X-Health-Status"]) == (200, "degraded")
    check = money.json()["checks"]["moneyOperations"]
    assert (check["failures"], check["failedInARow"]) == (2, 0)
    assert AuditLog.objects.filter(severity="CRITICAL").count() == 2
