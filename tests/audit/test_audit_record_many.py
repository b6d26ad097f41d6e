import pytest
from django.db import transaction

from audit.context import audit_context
from audit.models import Action, AuditLog, Source
from audit.services import AuditEntry, audit_record_many


class Boom(Exception):
    pass


@pytest.mark.django_db
def test_several_rows_are_written_in_order_with_who_and_redaction(founder):
    with audit_context(source=Source.COMMAND, label="test", request_id="req-many-1"):
        rows = audit_record_many(
            [
                AuditEntry(
                    Action.PAYMENT_RECEIVED,
                    description="paid",
                    entity_type="Payment",
                    entity_id=3,
                    metadata={"amount": "10.00", "token": "secret-value"},
                    actor=founder,
                ),
                AuditEntry(Action.LEAD_CONVERTED, description="converted", actor=founder),
            ]
        )

    stored = list(AuditLog.objects.order_by("id"))
    assert [r.pk for r in rows] == [r.pk for r in stored]
    assert [(r.action, r.entity_id, r.user_email, r.request_id, r.source) for r in stored] == [
        ("PAYMENT_RECEIVED", "3", "founder@example.com", "req-many-1", "COMMAND"),
        ("LEAD_CONVERTED", "", "founder@example.com", "req-many-1", "COMMAND"),
    ]
    assert stored[0].metadata == {"amount": "10.00", "token": "[REDACTED]", "context": "test"}


@pytest.mark.django_db
def test_rows_written_together_roll_back_with_the_business_transaction(founder):
    with pytest.raises(Boom), transaction.atomic():
        audit_record_many([AuditEntry(Action.LEAD_CONVERTED, description="x", actor=founder)])
        raise Boom

    assert AuditLog.objects.count() == 0
