"""Shared by the data migrations that rewrite stored phone numbers in E.164 (leads 0002,
payments 0002). Not a migration itself: the loader skips modules whose name starts with "_".

Numbers are rewritten with the same function the app now checks input with, so a number
migrated and the same number typed again are one string. Every row changed gets an audit row
with the spelling before and after (nothing is lost: a number read the wrong way can be put
back from the trail), and one summary row says what was left as it was and why. The summary
names rows by id, never by number, and is printed for whoever runs the migration.
"""

from __future__ import annotations

import sys
from typing import Any

from django.utils import timezone

from leads.validators import normalize_phone

BATCH = 500


def canonical(value: str) -> str | None:
    """E.164, or None for a number that is not valid (left as it is)."""
    try:
        return normalize_phone(value)
    except ValueError:
        return None


def audit_row(apps: Any, **fields: Any) -> Any:
    AuditLog = apps.get_model("audit", "AuditLog")
    return AuditLog(source="SYSTEM", created_at=timezone.now(), **fields)


def write_audit(apps: Any, rows: list[Any]) -> None:
    AuditLog = apps.get_model("audit", "AuditLog")
    AuditLog.objects.bulk_create(rows, batch_size=BATCH)


def summary_row(apps: Any, *, migration: str, what: str, changed: int, left: list[dict]) -> Any:
    description = f"{migration}: {changed} {what} rewritten in E.164"
    if left:
        description += f", {len(left)} left as they were (see metadata)"
        print(f"\n  {description}:", file=sys.stdout)
        for entry in left:
            print(f"    {entry}", file=sys.stdout)
    return audit_row(
        apps,
        action="DATA_MIGRATED",
        severity="WARNING" if left else "INFO",
        description=description,
        metadata={"migration": migration, "changed": changed, "leftUnchanged": left},
    )
