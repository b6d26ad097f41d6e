"""What the monitoring app writes: each check's state over time, and beat's check run."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent
from monitoring import deadman
from monitoring.checks import HEALTHY, MONEY, SITE, UNHEALTHY, HealthReport, run_checks
from monitoring.models import CheckChange, CheckState

logger = logging.getLogger(__name__)


def record_check_states(report: HealthReport) -> list[str]:
    """Store each check's status (before the site's ceilings); returns the checks that changed.

    A changed check gets `since` = the run's time and a CheckChange row, in one transaction. The
    rows are locked, so two runs at once record a change once; a run older than the one stored
    changes nothing.
    """
    at = report.checked_at
    statuses = {name: result.status for name, result in report.results.items()}
    changed: list[str] = []
    with transaction.atomic():
        CheckState.objects.bulk_create(
            [CheckState(name=n, status="", since=at, checked_at=at) for n in statuses],
            ignore_conflicts=True,
        )
        states = CheckState.objects.select_for_update().filter(name__in=statuses).order_by("name")
        for state in states:
            if state.checked_at > at:
                continue
            new = statuses[state.name]
            if state.status != new:
                CheckChange.objects.create(
                    name=state.name, old_status=state.status, new_status=new, changed_at=at
                )
                state.status, state.since = new, at
                changed.append(state.name)
            state.checked_at = at
            state.save(update_fields=["status", "since", "checked_at"])
    return changed


@dataclass(frozen=True)
class CheckRun:
    failed: bool
    summary: dict[str, object]


def run_scheduled_checks() -> CheckRun:
    """Beat's check run (on a worker): run every check afresh, record the changes, ping the dead
    man's switch — its fail URL when the site or the money operations are unhealthy, or when the
    run itself broke. Never raises: a broken run is reported, not retried."""
    try:
        report = run_checks()
        summary: dict[str, object] = {
            "site": report.status(SITE),
            "money": report.status(MONEY),
            "notHealthy": [n for n, r in report.results.items() if r.status != HEALTHY],
        }
        failed = UNHEALTHY in (summary["site"], summary["money"])
        # The database being down is what the fail ping reports; recording it is then impossible.
        if report.results["database"].status == HEALTHY:
            record_check_states(report)
    except Exception as exc:
        logger.error("health: the scheduled check run failed (%s)", type(exc).__name__)
        # The row (it never raises) also takes the error to Sentry.
        audit_record_independent(
            AuditEntry(
                Action.SYSTEM_ERROR,
                severity=Severity.ERROR,
                description=f"The scheduled health check run failed ({type(exc).__name__})",
                error=exc,
            )
        )
        summary, failed = {"error": f"The check run failed ({type(exc).__name__})"}, True
    deadman.ping(fail=failed, summary=summary)
    return CheckRun(failed=failed, summary=summary)
