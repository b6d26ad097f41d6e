from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.actors import Actor
from audit.models import Action
from audit.services import AuditEntry, audit_record
from core.changes import apply_changes
from core.errors import ConflictError
from leads.models import Lead

EDITABLE_FIELDS = (
    "name",
    "whatsapp",
    "email",
    "phone",
    "source",
    "status",
    "quality",
    "interested_level",
    "notes",
    "follow_up_date",
    "assigned_to",
)


def lead_create(*, actor: Actor, **fields: Any) -> Lead:
    """Create a lead and its LEAD_CREATED row in one transaction."""
    with transaction.atomic():
        lead = Lead.objects.create(**fields)
        audit_record(
            AuditEntry(
                Action.LEAD_CREATED,
                description=f"Lead {lead.name} created (source {lead.source})",
                entity=lead,
                metadata={"leadName": lead.name, "source": lead.source, "status": lead.status},
                actor=actor,
            ),
        )
    return lead


def _lock_open_lead(lead_id: int) -> Lead:
    lead = Lead.objects.select_for_update().get(pk=lead_id)
    if lead.converted:
        raise ConflictError(
            "This lead has become a student; it can no longer be changed or deleted.",
            code="lead_converted",
        )
    return lead


def lead_update(*, lead: Lead, actor: Actor, **changes: Any) -> Lead:
    """Apply changes to a lead that is not converted; LEAD_UPDATED records each changed field."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        # Locked so that a conversion running at the same moment cannot slip in between the
        # converted check and the write.
        lead = _lock_open_lead(lead.pk)
        diff = apply_changes(lead, changes)
        if diff:
            lead.save()
            audit_record(
                AuditEntry(
                    Action.LEAD_UPDATED,
                    description=f"Lead {lead.name} updated: {', '.join(diff)}",
                    entity=lead,
                    metadata={"leadName": lead.name, "changes": diff},
                    actor=actor,
                ),
            )
    return lead


def lead_delete(*, lead: Lead, actor: Actor) -> None:
    """Delete a lead that is neither converted nor invoiced (invoice numbers must never vanish)."""
    with transaction.atomic():
        lead = _lock_open_lead(lead.pk)
        if lead.invoices.exists():
            raise ConflictError(
                "This lead has invoices; cancel them instead of deleting the lead.",
                code="lead_has_invoices",
            )
        snapshot = {
            "leadName": lead.name,
            "whatsapp": lead.whatsapp,
            "email": lead.email,
            "source": lead.source,
            "status": lead.status,
        }
        lead_id = lead.pk
        lead.delete()
        audit_record(
            AuditEntry(
                Action.LEAD_DELETED,
                description=f"Lead {snapshot['leadName']} deleted",
                entity_type="Lead",
                entity_id=lead_id,
                metadata=snapshot,
                actor=actor,
            ),
        )
