"""How long each class of audit row is kept, and which monthly slices are due to leave.

Every action belongs to one retention class. On PostgreSQL the class decides the partition a
row lands in (month, then class), so a class's month can be archived and detached as a whole,
never by DELETE. The classes are fixed here in code because partition bounds are built from
them: moving an action to another class needs a migration that moves its rows. The number of
years per class is a setting (`AUDIT_RETENTION_YEARS`).
"""

from __future__ import annotations

from datetime import date

from django.conf import settings

from audit.models import Action

MONEY = "money"
ERRORS = "errors"
ACCESS = "access"
# Everything not listed below: leads, users, tokens, alerts, batches' admin edits and so on.
OTHER = "other"

CLASSES: tuple[str, ...] = (MONEY, ERRORS, ACCESS, OTHER)

# The actions of each listed class; any other action is OTHER (the catch-all partition).
CLASS_ACTIONS: dict[str, frozenset[str]] = {
    # Money records and the evidence that the trail of them is whole.
    MONEY: frozenset(
        {
            Action.INVOICE_GENERATED,
            Action.INVOICE_SENT,
            Action.INVOICE_UPDATED,
            Action.INVOICE_CANCELLED,
            Action.PAYMENT_RECEIVED,
            Action.STUDENT_CREATED,
            Action.STUDENT_UPDATED,
            Action.LEAD_CONVERTED,
            Action.LEAD_TO_STUDENT_CONVERSION,
            Action.BATCH_CREATED,
            Action.BATCH_UPDATED,
            Action.BATCH_DELETED,
            Action.RECONCILIATION,
            Action.AUDIT_CHECKPOINT,
            Action.AUDIT_CHAIN_BROKEN,
            # What left the database, when, and where its archive is: kept like the money.
            Action.AUDIT_ARCHIVED,
            Action.DATA_MIGRATED,
        }
    ),
    ERRORS: frozenset(
        {
            Action.SYSTEM_ERROR,
            Action.DATABASE_ERROR,
            Action.API_ERROR,
            Action.EMAIL_FAILED,
        }
    ),
    ACCESS: frozenset(
        {
            Action.LOGIN,
            Action.LOGOUT,
            Action.LOGIN_FAILED,
            Action.DATA_ACCESSED,
        }
    ),
}


def class_of(action: str) -> str:
    """The retention class of an action (OTHER for any action no class lists)."""
    for name, actions in CLASS_ACTIONS.items():
        if action in actions:
            return name
    return OTHER


def actions_of(name: str) -> frozenset[str]:
    """The actions a listed class holds (OTHER: every action no class lists, so none here)."""
    if name not in CLASSES:
        raise ValueError(f"unknown retention class {name!r}")
    return CLASS_ACTIONS.get(name, frozenset())


def retention_years(name: str) -> int:
    if name not in CLASSES:
        raise ValueError(f"unknown retention class {name!r}")
    return int(settings.AUDIT_RETENTION_YEARS[name])


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    month = month_start(month)
    return (
        month.replace(year=month.year + 1, month=1)
        if month.month == 12
        else month.replace(month=month.month + 1)
    )


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + (month.month - 1) + count
    return date(index // 12, index % 12 + 1, 1)


def is_due(name: str, month: date, *, today: date) -> bool:
    """Whether the class's rows of `month` (UTC calendar month) have been kept long enough.

    A month is due once its last day is `retention_years` behind: money of December 2016 may go
    on 1 January 2027 with ten years, not before.
    """
    return add_months(next_month(month), 12 * retention_years(name)) <= today
