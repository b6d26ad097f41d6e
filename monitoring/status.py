"""The founders' status page in words: for each check its value and the threshold it is judged
by, from the report the health endpoints serve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from core.timefmt import format_datetime
from monitoring.checks import MONEY_CHECKS, CheckResult, HealthReport
from monitoring.models import CheckState

LABELS = {
    "database": "Database connection",
    "databasePerformance": "Database speed",
    "errorRate": "Error rate",
    "moneyOperations": "Money operations",
    "systemMetrics": "Records",
    "recentActivity": "Activity",
    "redis": "Redis (cache, task queue)",
    "celery": "Workers and beat",
    "alerting": "Alert channels",
    "auditChain": "Audit chain",
    "reconciliation": "Money reconciled",
}


@dataclass(frozen=True)
class StatusRow:
    name: str
    label: str
    status: str
    value: str
    threshold: str
    since: datetime | None
    money: bool  # part of the money report as well


def status_rows(report: HealthReport, states: dict[str, CheckState]) -> list[StatusRow]:
    """One row per check of the report, in its order, with the recorded `since` of its status."""
    rows = []
    for name, result in report.results.items():
        state = states.get(name)
        since = state.since if state is not None and state.status == result.status else None
        rows.append(
            StatusRow(
                name=name,
                label=LABELS.get(name, name),
                status=result.status,
                value=_value(name, result),
                threshold=_threshold(name),
                since=since,
                money=name in MONEY_CHECKS,
            )
        )
    return rows


def _value(name: str, result: CheckResult) -> str:
    f: dict[str, Any] = result.fields
    skipped = str(f.get("message", "")).startswith(("Skipped", "Check failed"))
    if skipped or name in ("database", "alerting") or name not in LABELS:
        return str(f.get("message", ""))
    if name == "databasePerformance":
        return f"{f['queryTime']} for the probe query"
    if name == "errorRate":
        failed = f["errors"] + f["critical"]
        return f"{f['errorRate']} ({failed} of {f['total']} events, {f['period']})"
    if name == "moneyOperations":
        return f"{f['failures']} failed, {f['failedInARow']} in a row ({f['period']})"
    if name == "systemMetrics":
        return " · ".join(f"{k} {n}" for k, n in f.items())
    if name == "recentActivity":
        return f"{f['conversions']} conversions, {f['payments']} payments ({f['period']})"
    if name == "redis":
        return f"PING in {f['responseTime']}" if "responseTime" in f else f["message"]
    if name == "celery":
        return f"last heartbeat {f['age']} ago" if "age" in f else f["message"]
    if name == "auditChain" and f.get("lastVerified"):
        when = _moment(f["lastVerified"])
        if f["result"] == "broken":
            return f"Broken at row {f['firstBrokenRow']}, found {when} by {f['verifiedBy']}"
        return f"Intact: {f['checked']:,} seals checked {when} by {f['verifiedBy']}"
    if name == "reconciliation" and f.get("lastRun"):
        when = _moment(f["lastRun"])
        n = f["mismatches"]
        outcome = f"{n} mismatch{'es' if n != 1 else ''}" if n else "books and trail agree"
        return f"{outcome.capitalize()}, checked {when} by {f['ranBy']} (audit row {f['auditId']})"
    return str(f.get("message", ""))


def _moment(iso: str) -> str:
    # The checks give their times as ISO 8601 for the monitors; people read the school's format.
    return format_datetime(datetime.fromisoformat(iso))


def _threshold(name: str) -> str:
    s = settings
    return {
        "database": f"answers SELECT 1 within {s.HEALTH_DB_CONNECT_CHECK_MS} ms, else unhealthy",
        "databasePerformance": f"degraded above {s.HEALTH_DB_SLOW_MS} ms",
        "errorRate": (
            f"degraded above {s.HEALTH_ERROR_RATE_DEGRADED:g} % "
            f"(judged from {s.HEALTH_ERROR_RATE_MIN_EVENTS} events)"
        ),
        "moneyOperations": (
            f"degraded on any failure; unhealthy after {s.HEALTH_MONEY_FAILURES_UNHEALTHY} "
            "in a row (money report; the site's report says degraded)"
        ),
        "systemMetrics": "information",
        "recentActivity": "information",
        "redis": "answers PING within 0.5 s, else degraded",
        "celery": (
            f"degraded after {s.HEALTH_HEARTBEAT_STALE_SECONDS} s, "
            f"unhealthy after {s.HEALTH_HEARTBEAT_DEAD_SECONDS} s"
            if s.HEALTH_EXPECT_HEARTBEAT
            else "not applicable: tasks run inline"
        ),
        "alerting": "at least one channel, else degraded",
        "auditChain": (
            "unhealthy when broken"
            + (
                f"; degraded when not verified for {s.AUDIT_VERIFY_STALE_SECONDS:g} s"
                if s.HEALTH_EXPECT_HEARTBEAT
                else ""
            )
        ),
        "reconciliation": (
            "unhealthy on any mismatch"
            + (
                f"; degraded when not run for {3 * s.RECONCILIATION_SECONDS:g} s"
                if s.HEALTH_EXPECT_HEARTBEAT
                else ""
            )
        ),
    }.get(name, "—")
