"""Django's handler500 (planbeta.errors.server_error): errors that no DRF view turned into an
answer — in a plain view, or in a middleware after the view — still follow the error contract."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditLog

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.resilience.urls")]


def test_a_bug_outside_drf_under_api_answers_json_500_with_the_request_id():
    client = Client(raise_request_exception=False)

    response = client.get("/api/test/plain-bug", HTTP_X_REQUEST_ID="plain-bug-1")

    assert response.status_code == 500
    assert response.json() == {
        "error": "Something went wrong on our side. It has been recorded; quote the request id.",
        "code": "internal_error",
        "requestId": "plain-bug-1",
    }
    [row] = AuditLog.objects.all()
    assert (row.action, row.request_id) == ("SYSTEM_ERROR", "plain-bug-1")


def test_a_page_bug_that_is_not_the_database_keeps_the_500_page():
    client = Client(raise_request_exception=False)

    response = client.get("/test/page-bug")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "Retry-After" not in response
    assert AuditLog.objects.get().action == "SYSTEM_ERROR"
