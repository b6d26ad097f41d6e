from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.models import Action
from audit.services import audit_record
from leads.models import Lead


def lead_create(*, actor: Any, **fields: Any) -> Lead:
    """Create a lead and its LEAD_CREATED row in one transaction."""
    with transaction.atomic():
        lead = Lead.objects.create(**fields)
        audit_record(
            Action.LEAD_CREATED,
            description=f"Lead {lead.name} created (source {lead.source})",
            entity=lead,
            metadata={"leadName": lead.name, "source": lead.source, "status": lead.status},
            actor=actor,
        )
    return lead
