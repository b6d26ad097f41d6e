"""What the tests of the hash chain share: committed payment rows, and audit_verify's verdict."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command
from django.db import transaction

from audit.models import Action, AuditLog
from audit.services import AuditEntry, audit_record


def write(n: int) -> list[AuditLog]:
    with transaction.atomic():
        return [
            audit_record(
                AuditEntry(
                    Action.PAYMENT_RECEIVED,
                    description=f"payment {i}",
                    entity_type="Payment",
                    entity_id=i,
                    metadata={"amount": "100.00", "currency": "EUR"},
                )
            )
            for i in range(n)
        ]


def verify(*args: str) -> tuple[bool, str]:
    """(exit 0?, what audit_verify printed)."""
    out = io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()
