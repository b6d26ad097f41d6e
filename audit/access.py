"""Who looked at personal data: DATA_ACCESSED rows, at most one per user, entity and hour.

A lead's or student's detail, an invoice PDF, an audit-log export: each read calls
`record_access`. Reading a page ten times in an hour says no more than reading it once, so the
first read of an hour writes the row and the others nothing; the trail is not flooded.

"At most one" holds under concurrent requests: the check for this hour's row and the insert run
in one short transaction that first takes a transaction-scoped advisory lock on the
(user, entity, hour) key (PostgreSQL), so two requests for the same key queue for a moment and
the second finds the first's row. SQLite, the quick start, runs one writer at a time anyway.

Never raises: the read has happened and its answer must go out. A failed write goes to the log
(action and exception type only) and to Sentry.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sentry_sdk
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from audit.context import current_context
from audit.models import Action, AuditLog
from audit.services import AuditEntry, audit_record

logger = logging.getLogger(__name__)

# The reads in words, for the pages that list them ("Who looked at this record"); the codes are
# what the rows store and the API gives.
READ_LABELS = {
    "lead_detail": "Lead details",
    "student_detail": "Student details",
    "invoice_pdf": "Invoice PDF",
    "audit_log_export": "Audit-log export",
}
VIA_LABELS = {"page": "on the page", "api": "through the API"}


def read_words(metadata: dict[str, Any]) -> str:
    """A DATA_ACCESSED row's read in words: "Student details, through the API"."""
    what, via = str(metadata.get("what", "")), str(metadata.get("via", ""))
    return f"{READ_LABELS.get(what, what)}, {VIA_LABELS.get(via, via)}"


def record_access(
    *,
    entity_type: str,
    entity_id: Any,
    what: str,
    via: str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditLog | None:
    """Write the DATA_ACCESSED row of this read unless this user already has one for this entity
    in this hour; return the row written, if any.

    `what` names the read (`lead_detail`, `student_detail`, `invoice_pdf`, `audit_log_export`),
    `via` where (`api`, `page`). Call it after the read succeeded, outside any transaction.
    """
    user = actor if actor is not None else current_context().user
    if user is None or getattr(user, "pk", None) is None:
        return None
    entity_id = str(entity_id)
    try:
        return _write_once_per_hour(
            user=user,
            entity_type=entity_type,
            entity_id=entity_id,
            metadata={"what": what, "via": via, **(metadata or {})},
        )
    except Exception as exc:
        # The row would name a person's record; the log line names the action only.
        logger.error(
            "audit write failed: action=%s error=%s", Action.DATA_ACCESSED, type(exc).__name__
        )
        sentry_sdk.capture_message(
            f"audit write failed: action={Action.DATA_ACCESSED} error={type(exc).__name__}",
            level="error",
        )
        return None


def _write_once_per_hour(
    *, user: Any, entity_type: str, entity_id: str, metadata: dict[str, Any]
) -> AuditLog | None:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    conn = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic(using=DEFAULT_DB_ALIAS):
        if conn.vendor == "postgresql":
            key = f"{Action.DATA_ACCESSED}:{user.pk}:{entity_type}:{entity_id}:{hour.isoformat()}"
            with conn.cursor() as cursor:
                # Held until this transaction ends: the next request for the key waits here and
                # then sees the row this one wrote.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
        seen = AuditLog.objects.filter(
            entity_type=entity_type,
            entity_id=entity_id,
            action=Action.DATA_ACCESSED,
            user_id=user.pk,
            created_at__gte=hour,
            created_at__lt=hour + timedelta(hours=1),
        ).exists()
        if seen:
            return None
        return audit_record(
            AuditEntry(
                Action.DATA_ACCESSED,
                description=(
                    f"{entity_type} {entity_id} read ({metadata['what']}, {metadata['via']})"
                ),
                entity_type=entity_type,
                entity_id=entity_id,
                metadata=metadata,
                actor=user,
            )
        )
