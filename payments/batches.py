"""Batches change in the admin only; each change writes its audit row in the same transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.actors import Actor
from audit.models import Action
from audit.services import AuditEntry, audit_record
from core.changes import apply_changes, plain
from core.text import camel
from payments.models import Batch

# What the admin form edits (created_at is read-only there).
FIELDS = ("code", "level", "timing", "seats", "start_date")


def _snapshot(batch: Batch) -> dict[str, Any]:
    return {camel(field): plain(getattr(batch, field)) for field in FIELDS}


def batch_create(*, batch: Batch, actor: Actor) -> Batch:
    with transaction.atomic():
        batch.save(force_insert=True)
        audit_record(
            AuditEntry(
                Action.BATCH_CREATED,
                description=f"Batch {batch.code} created",
                entity=batch,
                metadata=_snapshot(batch),
                actor=actor,
            )
        )
    return batch


def batch_update(*, batch: Batch, actor: Actor) -> Batch:
    """Store the edited `batch`; BATCH_UPDATED holds before and after of each changed field."""
    with transaction.atomic():
        # The row as stored, locked: "before" is what the database held, not what the form
        # was first shown with.
        stored = Batch.objects.select_for_update().get(pk=batch.pk)
        diff = apply_changes(stored, {field: getattr(batch, field) for field in FIELDS})
        if diff:
            stored.save(update_fields=list(FIELDS))
            audit_record(
                AuditEntry(
                    Action.BATCH_UPDATED,
                    description=f"Batch {stored.code} updated: {', '.join(diff)}",
                    entity=stored,
                    metadata={"code": stored.code, "changes": diff},
                    actor=actor,
                )
            )
    return stored


def batch_delete(*, batches: Any, actor: Actor) -> int:
    """Delete the batches (never one with students: protected) with a BATCH_DELETED row each."""
    deleted = 0
    with transaction.atomic():
        for batch in Batch.objects.select_for_update().filter(pk__in=[b.pk for b in batches]):
            audit_record(
                AuditEntry(
                    Action.BATCH_DELETED,
                    description=f"Batch {batch.code} deleted",
                    entity=batch,
                    metadata=_snapshot(batch),
                    actor=actor,
                )
            )
            batch.delete()
            deleted += 1
    return deleted
