"""Reads of personal data write DATA_ACCESSED rows, at most one per user, entity and hour."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from audit.access import record_access
from audit.models import Action, AuditLog
from payments.models import Student
from tests.concurrency import run_concurrently
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice
from tests.triggers import inserts_refused

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "teacher", "marketing", "founder"]
REFUSED = {"anonymous": 401, "teacher": 403}


def _accessed(**filters):
    return list(
        AuditLog.objects.filter(action=Action.DATA_ACCESSED, **filters)
        .order_by("id")
        .values_list("user_email", "entity_type", "entity_id", "metadata")
    )


@pytest.fixture
def converted(marketing):
    invoice = make_converted_invoice(actor=marketing)
    return invoice, Student.objects.get(lead_id=invoice.lead_id)


def _api_reads(converted):
    invoice, student = converted
    return [
        (f"/api/leads/{invoice.lead_id}", "Lead", invoice.lead_id, "lead_detail"),
        (f"/api/students/{student.pk}", "Student", student.pk, "student_detail"),
        (f"/api/invoices/{invoice.pk}/pdf", "Invoice", invoice.pk, "invoice_pdf"),
    ]


@pytest.mark.parametrize("persona_client", PERSONAS, indirect=True)
def test_api_reads_are_recorded_once_per_hour_for_staff_and_never_for_refused_callers(
    request, persona_client, converted
):
    persona = request.node.callspec.params["persona_client"]
    for path, entity_type, entity_id, what in _api_reads(converted):
        for _ in range(3):
            response = persona_client.get(path)
            assert response.status_code == REFUSED.get(persona, 200), path
        rows = _accessed(entity_type=entity_type, entity_id=str(entity_id))
        if persona in REFUSED:
            assert rows == []
        else:
            email = f"{persona}@example.com"
            meta = {"what": what, "via": "api"}
            assert rows == [(email, entity_type, str(entity_id), meta)]


def test_a_new_hour_gets_a_new_row_and_each_user_their_own(
    founder_client, marketing_client, converted
):
    path, entity_type, _, _ = _api_reads(converted)[1]
    start = timezone.now().replace(minute=10)
    with time_machine.travel(start, tick=False):
        founder_client.get(path)
        marketing_client.get(path)
        founder_client.get(path)
    with time_machine.travel(start + timedelta(minutes=55), tick=False):  # the next hour
        founder_client.get(path)
    users = [row[0] for row in _accessed(entity_type=entity_type)]
    assert users == ["founder@example.com", "marketing@example.com", "founder@example.com"]


def test_pages_record_the_lead_the_student_and_the_pdf(founder, converted):
    invoice, _ = converted
    client = Client()
    client.force_login(founder)
    assert client.get(f"/leads/{invoice.lead_id}/").status_code == 200
    assert client.get(f"/invoices/{invoice.pk}/pdf/").status_code == 200
    assert [(r[1], r[3]) for r in _accessed()] == [
        ("Lead", {"what": "lead_detail", "via": "page"}),
        ("Student", {"what": "student_detail", "via": "page"}),
        ("Invoice", {"what": "invoice_pdf", "via": "page"}),
    ]


def test_the_founder_sees_who_looked_at_a_student_and_marketing_does_not(
    founder, marketing, marketing_client, converted
):
    invoice, student = converted
    marketing_client.get(f"/api/students/{student.pk}")
    founder_page = Client()
    founder_page.force_login(founder)
    html = founder_page.get(f"/leads/{invoice.lead_id}/").content.decode()
    assert "Who looked at this record" in html
    assert "Manu Marketing" in html
    assert (
        f"Student details, through the API: Student {student.student_code} ({student.name})" in html
    )
    assert "student_detail" not in html and "(api)" not in html
    marketing_page = Client()
    marketing_page.force_login(marketing)
    assert (
        "Who looked at this record"
        not in marketing_page.get(f"/leads/{invoice.lead_id}/").content.decode()
    )


def test_the_audit_log_api_answers_who_looked_at_a_student(
    founder_client, marketing_client, converted
):
    _, student = converted
    marketing_client.get(f"/api/students/{student.pk}")
    response = founder_client.get(
        "/api/system/audit-logs",
        {"action": "DATA_ACCESSED", "entityType": "Student", "entityId": str(student.pk)},
    )
    assert response.status_code == 200
    assert [(e["userEmail"], e["metadata"]["what"]) for e in response.json()["logs"]] == [
        ("marketing@example.com", "student_detail")
    ]


def test_a_read_without_a_user_writes_nothing():
    lead = make_lead()
    assert record_access(entity_type="Lead", entity_id=lead.pk, what="x", via="api") is None
    assert _accessed() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reads_of_one_entity_write_one_row(marketing):
    lead = make_lead()

    def read():
        return record_access(
            entity_type="Lead", entity_id=lead.pk, what="lead_detail", via="api", actor=marketing
        )

    results = run_concurrently([read] * 8)
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r is not None for r in results) == 1
    assert len(_accessed(entity_type="Lead")) == 1


@pytest.fixture
def data_accessed_rows_fail(owner_connection):
    with inserts_refused(
        owner_connection,
        table="audit_auditlog",
        name="test_refuse_access",
        when="NEW.action = 'DATA_ACCESSED'",
    ):
        yield


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failed_write_never_breaks_the_read(marketing, marketing_client, data_accessed_rows_fail):
    lead = make_lead(name="Asha Read")
    response = marketing_client.get(f"/api/leads/{lead.pk}")
    assert response.status_code == 200
    assert response.json()["name"] == "Asha Read"
    assert _accessed() == []
    # The connection is usable afterwards: the next read answers too.
    assert marketing_client.get(f"/api/leads/{lead.pk}").status_code == 200
