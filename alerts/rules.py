"""The condition rules: each looks at the present and says whether its alert should be firing.

Rule 1 (critical audit events) and rule 6 (the daily digest) are events, not conditions; they
live in `alerts.services`. Rules 3 and 5 read the health checks of `monitoring.checks`. Messages
carry counts, actions, ids and links only — never a student's or a lead's personal data, because
they go to chat channels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from alerts.channels import EMAIL
from audit.selectors import activity_counts, any_row_before
from audit.selectors import error_rate as audit_error_rate
from monitoring.checks import check_database_performance, collect_health, heartbeat_age_seconds


@dataclass(frozen=True)
class Observation:
    firing: bool
    title: str
    body: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"


@dataclass(frozen=True)
class Rule:
    name: str
    check: Callable[[datetime], Observation | None]
    # Channel kinds this rule notifies; empty means every configured channel.
    channels: tuple[str, ...] = ()
    repeat_hours: float | None = None

    @property
    def repeat(self) -> timedelta:
        return timedelta(hours=self.repeat_hours or settings.ALERT_REPEAT_HOURS)


def error_rate(now: datetime) -> Observation:
    """Rule 2: server-side failures above the threshold share of the last hour's audit events.

    The same rate as the health check's (`audit.selectors.error_rate`), with the rule's own
    threshold and minimum number of events.
    """
    counts = audit_error_rate(now=now)
    rate, errors, total = counts.ratio, counts.failures, counts.total
    firing = total >= settings.ALERT_ERROR_RATE_MIN_EVENTS and rate > (
        settings.ALERT_ERROR_RATE_THRESHOLD
    )
    return Observation(
        firing=firing,
        title=f"Error rate {rate:.1%} in the last hour ({errors} of {total} events)",
        body=(
            f"More than {settings.ALERT_ERROR_RATE_THRESHOLD:.0%} of the audited events in the "
            "last hour were errors."
            if firing
            else "The error rate is within bounds."
        ),
        facts={"errors": errors, "events": total, "errorRate": f"{rate:.1%}"},
    )


def slow_database(now: datetime) -> Observation:
    """Rule 3: the health check's probe query slower than ALERT_SLOW_QUERY_MS."""
    threshold = settings.ALERT_SLOW_QUERY_MS
    # The health check gives up on its probe after 1.5 s; this rule's threshold is 2 s, so it
    # waits longer (ALERT_SLOW_QUERY_CANCEL_MS, by default one and a half thresholds): a cancelled
    # probe then means the database really was slower than the threshold.
    result = check_database_performance(timeout_ms=int(settings.ALERT_SLOW_QUERY_CANCEL_MS))
    facts = {"queryTime": result.fields["queryTime"], "threshold": f"{threshold:.0f}ms"}
    if result.value is None:
        # The probe was cancelled at ALERT_SLOW_QUERY_CANCEL_MS, or failed: no measurement, and a
        # database that does not answer the probe in time is what this rule is for.
        return Observation(
            firing=True,
            title="Database probe query failed or timed out",
            body=str(result.fields.get("message", "")),
            facts=facts,
        )
    query_ms = result.value
    return Observation(
        firing=query_ms > threshold,
        title=f"Database query time {query_ms:.0f} ms (threshold {threshold:.0f} ms)",
        body="The database answers slowly." if query_ms > threshold else "Query time is normal.",
        facts=facts,
    )


def no_activity(now: datetime) -> Observation | None:
    """Rule 4: no conversion and no payment in ALERT_QUIET_HOURS (48 h)."""
    window = timedelta(hours=settings.ALERT_QUIET_HOURS)
    if not any_row_before(now - window):
        return None  # a system younger than the window has had no chance to be quiet
    activity = activity_counts(now=now, window=window)
    conversions, payments = activity.conversions, activity.payments
    hours = f"{settings.ALERT_QUIET_HOURS:g}"
    return Observation(
        firing=conversions == 0 and payments == 0,
        title=f"No conversions and no payments in {hours} h",
        body=(
            "Nothing was converted or paid; check the payment flow and the lead pipeline."
            if conversions == 0 and payments == 0
            else f"Activity is back: {conversions} conversions, {payments} payments."
        ),
        facts={"conversions": conversions, "payments": payments, "period": f"last {hours} hours"},
        severity="warning",
    )


def health_unhealthy(now: datetime) -> Observation:
    """Rule 5a: the health endpoint's overall status is unhealthy (and, later, recovered)."""
    body, http_status = collect_health(detailed=True)
    status = body.get("status", "")
    failing = sorted(
        name
        for name, check in (body.get("checks") or {}).items()
        if isinstance(check, dict) and check.get("status") not in (None, "healthy")
    )
    return Observation(
        firing=status == "unhealthy",
        title=f"Health is {status or 'unknown'} (HTTP {http_status})",
        body="Checks not healthy: " + (", ".join(failing) or "none"),
        facts={"status": status, "httpStatus": http_status, "checks": ", ".join(failing)},
        severity="critical",
    )


def heartbeat_stale(now: datetime) -> Observation | None:
    """Rule 5b: the Celery beat heartbeat is older than ALERT_HEARTBEAT_STALE_SECONDS.

    No heartbeat at all (a fresh deploy) is not judged: beat writes the first one within a minute.
    """
    age = heartbeat_age_seconds()
    if age is None:
        return None
    limit = settings.ALERT_HEARTBEAT_STALE_SECONDS
    return Observation(
        firing=age > limit,
        title=f"Beat heartbeat is {age:.0f} s old (limit {limit} s)",
        body=(
            "Scheduled tasks are not running: check the beat and worker processes and Redis."
            if age > limit
            else "Scheduled tasks are running again."
        ),
        facts={"heartbeatAge": f"{age:.0f}s", "limit": f"{limit}s"},
        severity="critical",
    )


RULES: tuple[Rule, ...] = (
    Rule("error_rate", error_rate, channels=(EMAIL,)),
    Rule("slow_database", slow_database, channels=(EMAIL,)),
    Rule("no_activity", no_activity, channels=(EMAIL,), repeat_hours=24),
    Rule("health_unhealthy", health_unhealthy),
    Rule("heartbeat_stale", heartbeat_stale),
)
