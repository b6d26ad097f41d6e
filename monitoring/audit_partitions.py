"""The `auditPartitions` health check: the trail's monthly partitions are there ahead of time.

Degraded when next month is not created yet: from then on rows would land in the DEFAULT
partition, which means beat's daily `audit.ensure_partitions` has not run, or failed (each
failure is also an ERROR row), for about AUDIT_PARTITION_MONTHS_AHEAD months. Rows already in
the DEFAULT (dated in no created month: a clock far off, an old row replayed) are reported as
`defaultRows` without changing the status: nothing is lost or refused, and the next ensure moves
them into their months. Never unhealthy: every write still succeeds. On SQLite there is one table
and nothing to report. The check reads the catalog and the DEFAULT partition, which is empty in
normal operation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections

from audit import partitions
from monitoring.checks import (
    DEGRADED,
    HEALTHY,
    CheckResult,
    _bounded_cursor,  # the one statement timeout and budget of every database check
    db_alias,
)

# Counted up to this many: beyond it the figure says "at least" (the message says so).
DEFAULT_ROWS_CAP = 10_000


def check_audit_partitions() -> CheckResult:
    alias = db_alias()
    if connections[alias].vendor != "postgresql":
        return CheckResult(HEALTHY, {"message": "One table (SQLite): not partitioned"})
    with _bounded_cursor(alias, settings.HEALTH_QUERY_TIMEOUT_MS) as cursor:
        # The database's date, not the process's: partitions follow the rows' created_at.
        cursor.execute("SELECT (now() AT TIME ZONE 'UTC')::date")
        (today,) = cursor.fetchone()
        ahead = partitions.months_ahead(today=today, using=alias)
        outside = partitions.default_rows(using=alias, cap=DEFAULT_ROWS_CAP)
    fields = {"monthsAhead": ahead, "defaultRows": outside}
    counted = f"at least {outside}" if outside >= DEFAULT_ROWS_CAP else str(outside)
    waiting = (
        f"; {counted} rows outside every month wait for the next ensure"
        " (`manage.py audit_partitions ensure`)"
        if outside
        else ""
    )
    if not ahead:
        message = "Next month's audit partition is not created yet"
        return CheckResult(DEGRADED, {"message": message + waiting, **fields}, float(outside))
    message = f"Audit partitions ready {ahead} months ahead"
    return CheckResult(HEALTHY, {"message": message + waiting, **fields}, float(outside))
