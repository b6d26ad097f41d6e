"""The audit write itself (audit.services._insert_rows): what it stores, in how many statements,
and that a row the database refuses takes the business change down with it."""

from __future__ import annotations

import pytest
from django.db import DataError, transaction
from django.test import RequestFactory

from audit import chain
from audit.context import bind_request, unbind
from audit.models import Action, AuditLog, AuditSeal, Severity
from audit.services import AuditEntry, _build, audit_record, audit_record_many
from leads.models import Lead
from tests.audit.chain_support import verify
from tests.factories import make_lead

# Every stored column but the id (created_at is compared to what each row was given).
COMPARED = [f.attname for f in AuditLog._meta.concrete_fields if f.attname not in ("id",)]


def _in_a_request(user):
    request = RequestFactory().post(
        "/api/leads/7",
        HTTP_USER_AGENT="pytest-agent/1.0 (ünïcode)",
        HTTP_X_REQUEST_ID="req-write-1",
        REMOTE_ADDR="2001:db8::7",
    )
    request.user = user
    return bind_request(request)


def _entry(lead: Lead, error: BaseException | None = None) -> AuditEntry:
    return AuditEntry(
        Action.LEAD_UPDATED,
        description="Lead Ärzte updated",
        severity=Severity.WARNING,
        entity=lead,
        metadata={"changes": {"status": ["NEW", "CONTACTED"]}, "apiKey": "k-1", "n": 3, "ok": None},
        error=error,
    )


@pytest.mark.django_db
def test_a_row_stores_every_column_exactly_as_model_save_stored_it(founder):
    lead = make_lead(name="Ärzte")
    try:
        raise ValueError("postgres://app:pw@db/planbeta refused")
    except ValueError as exc:
        error = exc
    token = _in_a_request(founder)
    try:
        entry = _entry(lead, error)
        written = audit_record(entry)
        # The way rows were written before: the model's own save.
        saved = _build(entry)
        saved.save(force_insert=True)
    finally:
        unbind(token)

    stored, expected = (
        AuditLog.objects.filter(pk=pk).values(*COMPARED).get() for pk in (written.pk, saved.pk)
    )
    stored_at, expected_at = stored.pop("created_at"), expected.pop("created_at")
    assert stored == expected
    assert stored_at == written.created_at and expected_at == saved.created_at
    assert (stored["ip_address"], stored["request_id"], stored["user_id"]) == (
        "2001:db8::7",
        "req-write-1",
        founder.pk,
    )
    assert stored["metadata"]["apiKey"] == "[REDACTED]"
    assert "pw@" not in stored["error_message"]


@pytest.mark.django_db
def test_the_returned_row_is_the_stored_row_with_its_id(founder):
    row = audit_record(AuditEntry(Action.LEAD_CREATED, description="created", actor=founder))

    assert row.pk == AuditLog.objects.get().pk
    assert not row._state.adding
    assert str(row) == str(AuditLog.objects.get())


@pytest.mark.django_db
def test_one_audit_record_is_one_statement(founder, django_assert_num_queries):
    entry = AuditEntry(Action.LEAD_CREATED, description="created", actor=founder)

    with django_assert_num_queries(1):
        audit_record(entry)


@pytest.mark.postgres  # SQLite does not enforce a column's length
@pytest.mark.django_db
def test_a_row_the_database_refuses_fails_the_business_change_and_leaves_neither(founder):
    with pytest.raises(DataError), transaction.atomic():
        make_lead(name="Refused")
        audit_record(AuditEntry("X" * 65, description="too long an action", actor=founder))

    assert not Lead.objects.exists()
    assert not AuditLog.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rows_of_both_writers_are_sealed_and_the_chain_verifies():
    with transaction.atomic():
        one = audit_record(AuditEntry(Action.LEAD_CREATED, description="one"))
        many = audit_record_many(
            [
                AuditEntry(
                    Action.PAYMENT_RECEIVED, description="paid", metadata={"amount": "9.50"}
                ),
                AuditEntry(Action.LEAD_CONVERTED, description="converted"),
            ]
        )

    assert chain.seal_pending() == 3
    sealed = list(AuditSeal.objects.order_by("seq").values_list("audit_id", flat=True))
    assert sealed == [one.pk, *(row.pk for row in many)]
    ok, out = verify()
    assert ok, out
