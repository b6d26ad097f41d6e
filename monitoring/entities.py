"""The names of the entities the audit trail is about, for people: an invoice by its number, a
lead by its name, a student by its code. The trail stores only a type and an id.

Resolved in bulk for a page of entries: one query per entity type on the page, never one per
row. An entity without a name here (a deleted lead, a kind of thing the trail only mentions) has
none, and the page shows its type and id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime

from django.apps import apps

from accounts.selectors import user_names
from audit.models import AuditLog
from core.fields import MAX_ID
from invoices.selectors import invoice_numbers
from leads.selectors import lead_names
from payments.selectors import (
    batch_codes,
    invoice_payment_ids,
    payment_labels,
    student_labels,
)

# Entity type (as audit rows store it, the model's name) -> {id: name} for a set of ids.
NAMERS: dict[str, Callable[[Iterable[int]], dict[int, str]]] = {
    "Lead": lead_names,
    "Invoice": invoice_numbers,
    "Student": student_labels,
    "Payment": payment_labels,
    "User": user_names,
    "Batch": batch_codes,
}


def entity_labels(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """{(entity type, entity id): name} for those of the pairs that have one."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for entity_type, entity_id in pairs:
        # Ids are stored as text; only a row id of a type we can name is looked up.
        if entity_type in NAMERS and entity_id.isascii() and entity_id.isdigit():
            pk = int(entity_id)
            if 0 < pk <= MAX_ID:
                wanted[entity_type].add(pk)
    labels: dict[tuple[str, str], str] = {}
    for entity_type, ids in wanted.items():
        for pk, label in NAMERS[entity_type](ids).items():
            labels[(entity_type, str(pk))] = label
    return labels


def label_rows(rows: list[AuditLog]) -> list[AuditLog]:
    """The rows, each with `entity_label` set (None when its entity has no name)."""
    labels = entity_labels((row.entity_type, row.entity_id) for row in rows)
    for row in rows:
        row.entity_label = labels.get((row.entity_type, row.entity_id))  # type: ignore[attr-defined]
    return rows


def entity_label(entity_type: str, entity_id: str) -> str | None:
    """One entity's name (the heading of a history opened from its address)."""
    return entity_labels([(entity_type, entity_id)]).get((entity_type, entity_id))


def related_entities(entity_type: str, entity_id: str) -> list[tuple[str, str]]:
    """The entities whose rows belong to this one's history: an invoice's payments. (A payment's
    rows name the payment, since that is the record they are about; the invoice's history is
    where staff look for them.)"""
    if entity_type == "Invoice" and entity_id.isascii() and entity_id.isdigit():
        pk = int(entity_id)
        if 0 < pk <= MAX_ID:
            return [("Payment", str(p)) for p in invoice_payment_ids(pk)]
    return []


# Entity type -> (app, model, field): when a record of that type was made. No audit row about a
# record is older than the record (its rows are written with it or after it), so its history
# starts there: the feed reads the months from then on only (audit.timeline's not_before).
_CREATED: dict[str, tuple[str, str, str]] = {
    "Lead": ("leads", "Lead", "created_at"),
    "Invoice": ("invoices", "Invoice", "created_at"),
    "Student": ("payments", "Student", "created_at"),
    "Payment": ("payments", "Payment", "created_at"),
    "User": ("accounts", "User", "date_joined"),
}


def history_start(pairs: Iterable[tuple[str, str]]) -> datetime | None:
    """When the oldest of these entities was made; None when one of them is of a type without a
    known creation time, or gone (a deleted lead: its history may be any age)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for entity_type, entity_id in pairs:
        if entity_type not in _CREATED or not (entity_id.isascii() and entity_id.isdigit()):
            return None
        pk = int(entity_id)
        if not 0 < pk <= MAX_ID:
            return None
        wanted[entity_type].add(pk)
    starts: list[datetime] = []
    for entity_type, ids in wanted.items():
        app, model, field = _CREATED[entity_type]
        found = dict(apps.get_model(app, model).objects.filter(pk__in=ids).values_list("pk", field))
        if len(found) < len(ids):
            return None
        starts.extend(found.values())
    return min(starts, default=None)
