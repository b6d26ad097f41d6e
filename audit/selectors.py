"""Reads of the audit trail for the audit-log API, the activity dashboard, health and alerts.

Every read is keyset-based on the primary key (ids grow with time): no OFFSET, and no COUNT(*)
over the whole table. Indexes behind each query are in migration 0003.

"The last hour" (or any window ending now) means `now - window < created_at <= now`, everywhere:
`in_window` is its one definition, so the health check and the alert rule count the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from audit.models import Action, AuditLog, Severity

ERROR_SEVERITIES = (Severity.ERROR, Severity.CRITICAL)
# Rows that record a client's mistake rather than ours. Refused logins are the only client mistake
# that writes a row (4xx answers, throttled requests and invalid forms write none); they are
# WARNING, and they are left out of the error rate's events as well, so that someone guessing
# passwords cannot dilute a real outage's rate until health looks better than it is.
CLIENT_MISTAKE_ACTIONS = (Action.LOGIN_FAILED,)


@dataclass(frozen=True)
class AuditLogPage:
    logs: list[AuditLog]
    next_cursor: int | None


def audit_log_page(*, limit: int = 50, after: int | None = None, **filters: Any) -> AuditLogPage:
    """One page of the feed, newest first; `filters` are audit_log_matching's.

    Without `after`: the newest `limit` entries (older than `before` if given). With `after`: the
    `limit` entries right after that id, oldest of the new ones first taken, so a poller that keeps
    passing `nextCursor` back as `after` walks forward through every entry without a gap, even
    when more than `limit` arrived between two polls. `next_cursor` is the highest id seen (or
    `after` itself when nothing is new): the value for the next poll's `after`.
    """
    qs = audit_log_matching(**filters)
    if after is not None:
        logs = list(qs.filter(id__gt=after).order_by("id")[:limit])
        logs.reverse()
    else:
        logs = list(qs.order_by("-id")[:limit])
    newest = logs[0].id if logs else after
    return AuditLogPage(logs=logs, next_cursor=newest)


def audit_log_matching(
    *,
    errors_only: bool = False,
    after: int | None = None,
    before: int | None = None,
    severity: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    related: Sequence[tuple[str, str]] = (),
) -> QuerySet[AuditLog]:
    """Every entry that the audit-log API's filters select, unordered (the feed and the export).

    `related` (entity type, id) pairs belong to the history of the entity filtered by (an
    invoice's payments): their rows match too.
    """
    qs: QuerySet[AuditLog] = AuditLog.objects.all()
    if after is not None:
        qs = qs.filter(id__gt=after)
    if errors_only:
        # Spelled exactly like the partial index's predicate so the planner can use it.
        qs = qs.filter(severity__in=ERROR_SEVERITIES)
    if severity:
        qs = qs.filter(severity=severity)
    if action:
        qs = qs.filter(action=action)
    if entity_type and entity_id and related:
        # One (type, id IN ...) term per type: each is a range of the (entity_type, entity_id)
        # index, which PostgreSQL combines with a BitmapOr.
        ids: dict[str, list[str]] = {entity_type: [entity_id]}
        for other_type, other_id in related:
            ids.setdefault(other_type, []).append(other_id)
        match = Q()
        for kind, kind_ids in ids.items():
            match |= Q(entity_type=kind, entity_id__in=kind_ids)
        qs = qs.filter(match)
    else:
        if entity_type:
            qs = qs.filter(entity_type=entity_type)
        if entity_id:
            qs = qs.filter(entity_id=entity_id)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if before is not None:
        qs = qs.filter(id__lt=before)
    return qs


def latest_row(action: str, *, using: str = DEFAULT_DB_ALIAS) -> Mapping[str, Any] | None:
    """The newest row of an action (its id, time, severity, source and metadata), or None."""
    return (
        AuditLog.objects.using(using)
        .filter(action=action)
        .order_by("-id")
        .values("id", "created_at", "severity", "source", "metadata")
        .first()
    )


def data_access_list(*, entities: list[tuple[str, Any]], limit: int = 20) -> list[AuditLog]:
    """Who read these entities (DATA_ACCESSED rows), newest first: "who looked at this student"."""
    match = Q()
    for entity_type, entity_id in entities:
        match |= Q(entity_type=entity_type, entity_id=str(entity_id))
    return list(
        AuditLog.objects.filter(match, action=Action.DATA_ACCESSED)
        .only("created_at", "user_name", "user_email", "entity_type", "entity_id", "metadata")
        .order_by("-id")[:limit]
    )


def audit_log_stats(*, now: datetime | None = None, hours: int = 24) -> dict[str, Any]:
    """Totals per severity, the top 10 actions and hourly counts for the last `hours` hours.

    One grouped query over the window: it reads only (created_at, severity, action), which the
    covering index on created_at holds, so PostgreSQL answers it with an index-only scan.
    """
    now = now or timezone.now()
    rows = (
        in_window(AuditLog.objects.all(), now=now, window=timedelta(hours=hours))
        .annotate(hour=TruncHour("created_at"))
        .values("hour", "severity", "action")
        .annotate(n=Count("*"))
        .order_by()
    )
    per_severity: Counter[str] = Counter()
    per_action: Counter[str] = Counter()
    per_hour: dict[datetime, list[int]] = {}
    for row in rows:
        per_severity[row["severity"]] += row["n"]
        per_action[row["action"]] += row["n"]
        bucket = per_hour.setdefault(row["hour"], [0, 0])
        bucket[0] += row["n"]
        if row["severity"] in ERROR_SEVERITIES:
            bucket[1] += row["n"]

    current = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    hourly = []
    for i in range(hours - 1, -1, -1):
        hour = current - timedelta(hours=i)
        total, errors = per_hour.get(hour, (0, 0))
        hourly.append({"hour": hour, "total": total, "errors": errors})
    top = sorted(per_action.items(), key=lambda item: (-item[1], item[0]))[:10]
    return {
        "total_logs": sum(per_severity.values()),
        "info_count": per_severity[Severity.INFO],
        "warning_count": per_severity[Severity.WARNING],
        "error_count": per_severity[Severity.ERROR],
        "critical_count": per_severity[Severity.CRITICAL],
        "top_actions": [{"action": action, "count": count} for action, count in top],
        "hourly": hourly,
    }


def in_window(qs: QuerySet[AuditLog], *, now: datetime, window: timedelta) -> QuerySet[AuditLog]:
    """The rows of `qs` written in the `window` that ends at `now`.

    now - window < created_at <= now: a row exactly one window old has left it.
    """
    return qs.filter(created_at__gt=now - window, created_at__lte=now)


@dataclass(frozen=True)
class ErrorRate:
    """Server-side failures among the audited events of a window."""

    errors: int
    critical: int
    total: int

    @property
    def failures(self) -> int:
        return self.errors + self.critical

    @property
    def percent(self) -> float:
        # failures * 100 / total, not ratio * 100: 5 of 100 must be exactly 5.0, not 5.000…01.
        return self.failures * 100 / self.total if self.total else 0.0

    @property
    def ratio(self) -> float:
        return self.failures / self.total if self.total else 0.0


def error_rate(
    *, now: datetime, window: timedelta = timedelta(hours=1), using: str = DEFAULT_DB_ALIAS
) -> ErrorRate:
    """ERROR and CRITICAL rows among all rows of the window, client mistakes left out.

    Client mistakes (4xx, throttling, invalid input) write no row or a WARNING one, so they are
    never errors; see CLIENT_MISTAKE_ACTIONS for the rows that are not events either. Grouped by
    severity rather than filtered aggregates (see `_count_by`).
    """
    rows = in_window(AuditLog.objects.using(using), now=now, window=window)
    per_severity = _count_by("severity", rows.exclude(action__in=CLIENT_MISTAKE_ACTIONS))
    return ErrorRate(
        errors=per_severity.get(Severity.ERROR, 0),
        critical=per_severity.get(Severity.CRITICAL, 0),
        total=sum(per_severity.values()),
    )


@dataclass(frozen=True)
class Activity:
    """Successful conversions and payments of a window."""

    conversions: int
    payments: int


def activity_counts(*, now: datetime, window: timedelta, using: str = DEFAULT_DB_ALIAS) -> Activity:
    """Conversions and payments that succeeded (INFO rows) in the window.

    The failure reports of both operations carry the same actions at WARNING or above; they are
    not activity.
    """
    rows = in_window(AuditLog.objects.using(using), now=now, window=window)
    per_action = _count_by(
        "action",
        rows.filter(
            action__in=[Action.LEAD_TO_STUDENT_CONVERSION, Action.PAYMENT_RECEIVED],
            severity=Severity.INFO,
        ),
    )
    return Activity(
        conversions=per_action.get(Action.LEAD_TO_STUDENT_CONVERSION, 0),
        payments=per_action.get(Action.PAYMENT_RECEIVED, 0),
    )


# The actions of the two money operations (pay-and-convert, a later payment). A failed request
# writes one ERROR/CRITICAL row of its action that survives the rollback; a successful one writes
# INFO rows of them in its own transaction.
MONEY_ACTIONS = (Action.LEAD_TO_STUDENT_CONVERSION, Action.PAYMENT_RECEIVED)
_FAILED = (Severity.ERROR, Severity.CRITICAL)


@dataclass(frozen=True)
class MoneyOutcomes:
    """Failed money operations of a window, and how many of them came after the last success."""

    failures: int
    failed_in_a_row: int
    last_failure: datetime | None
    last_success: datetime | None


def money_outcomes(
    *, now: datetime, window: timedelta, using: str = DEFAULT_DB_ALIAS
) -> MoneyOutcomes:
    """Failed money operations (their ERROR/CRITICAL rows) in the window; WARNING rows (a refused
    second conversion, a COMMIT that did commit) are not failures. Two grouped queries at most,
    both on the covering index of created_at."""
    rows = in_window(AuditLog.objects.using(using), now=now, window=window).filter(
        action__in=MONEY_ACTIONS
    )
    per_severity = {
        severity: (n, last)
        for severity, n, last in rows.values_list("severity")
        .annotate(n=Count("*"), last=Max("created_at"))
        .order_by()
    }
    failed = [per_severity[s] for s in _FAILED if s in per_severity]
    last_success = per_severity[Severity.INFO][1] if Severity.INFO in per_severity else None
    failures = sum(n for n, _ in failed)
    in_a_row = 0
    if failures:
        since_success = rows.filter(severity__in=_FAILED)
        if last_success is not None:
            since_success = since_success.filter(created_at__gt=last_success)
        in_a_row = since_success.count()
    return MoneyOutcomes(
        failures=failures,
        failed_in_a_row=in_a_row,
        last_failure=max((last for _, last in failed), default=None),
        last_success=last_success,
    )


def _count_by(column: str, rows: QuerySet[AuditLog]) -> dict[str, int]:
    # Grouped rather than filtered aggregates: the query then reads only (created_at, severity,
    # action), which the covering index on created_at holds.
    return dict(rows.values_list(column).annotate(n=Count("*")).order_by())
