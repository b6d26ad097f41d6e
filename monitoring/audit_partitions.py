"""The `auditPartitions` health check: the trail's monthly partitions are there ahead of time.

Degraded when rows sit in the DEFAULT partition (dated in no created month: beat's daily
`audit.ensure_partitions` moves them into their month, so rows staying there mean it is not
running or failing) or when next month is not created yet (its rows would land there). Never
unhealthy: every write still succeeds. On SQLite there is one table and nothing to report.
The check reads the catalog and the DEFAULT partition, which is empty in normal operation.
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


def check_audit_partitions() -> CheckResult:
    alias = db_alias()
    if connections[alias].vendor != "postgresql":
        return CheckResult(HEALTHY, {"message": "One table (SQLite): not partitioned"})
    with _bounded_cursor(alias, settings.HEALTH_QUERY_TIMEOUT_MS) as cursor:
        # The database's date, not the process's: partitions follow the rows' created_at.
        cursor.execute("SELECT (now() AT TIME ZONE 'UTC')::date")
        (today,) = cursor.fetchone()
        ahead = partitions.months_ahead(today=today, using=alias)
        outside = partitions.default_rows(using=alias)
    fields = {"monthsAhead": ahead, "defaultRows": outside}
    if outside:
        return CheckResult(
            DEGRADED,
            {
                "message": f"{outside} audit rows are outside every monthly partition: run"
                " `manage.py audit_partitions ensure`",
                **fields,
            },
            float(outside),
        )
    if not ahead:
        return CheckResult(
            DEGRADED,
            {"message": "Next month's audit partition is not created yet", **fields},
            0.0,
        )
    return CheckResult(
        HEALTHY, {"message": f"Audit partitions ready {ahead} months ahead", **fields}, 0.0
    )
