"""What an edit changed, as an UPDATED audit row's metadata holds it (CONTRACT §5: before/after
values of the changed fields)."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from core.money import money_str
from core.text import camel


def apply_changes(instance: Any, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set each of `values` that differs on `instance`; return the changes by camelCase field name.

    `{"followUpDate": {"before": "2026-05-01", "after": None}}`. Fields whose value is unchanged
    are neither set nor listed, so an edit that changes nothing writes no row.
    """
    changes: dict[str, dict[str, Any]] = {}
    for field, after in values.items():
        before = getattr(instance, field)
        if before != after:
            changes[camel(field)] = {"before": plain(before), "after": plain(after)}
            setattr(instance, field, after)
    return changes


def plain(value: Any) -> Any:
    """A value as audit metadata holds it: money as "134.00", dates as ISO text, a row as its id."""
    if isinstance(value, Decimal):
        return money_str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value
