"""Reads of the audit trail for the audit-log API and the activity dashboard.

Every read is keyset-based on the primary key (ids grow with time): no OFFSET, and no COUNT(*)
over the whole table. Indexes behind each query are in migration 0003.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from audit.models import AuditLog, Severity

ERROR_SEVERITIES = (Severity.ERROR, Severity.CRITICAL)


@dataclass(frozen=True)
class AuditLogPage:
    logs: list[AuditLog]
    next_cursor: int | None


def audit_log_page(
    *,
    errors_only: bool = False,
    limit: int = 50,
    after: int | None = None,
    before: int | None = None,
    severity: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
) -> AuditLogPage:
    """One page of the feed, newest first.

    Without `after`: the newest `limit` entries (older than `before` if given). With `after`: the
    `limit` entries right after that id, oldest of the new ones first taken, so a poller that keeps
    passing `nextCursor` back as `after` walks forward through every entry without a gap, even
    when more than `limit` arrived between two polls. `next_cursor` is the highest id seen (or
    `after` itself when nothing is new): the value for the next poll's `after`.
    """
    qs: QuerySet[AuditLog] = AuditLog.objects.all()
    if errors_only:
        # Spelled exactly like the partial index's predicate so the planner can use it.
        qs = qs.filter(severity__in=ERROR_SEVERITIES)
    if severity:
        qs = qs.filter(severity=severity)
    if action:
        qs = qs.filter(action=action)
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

    if after is not None:
        logs = list(qs.filter(id__gt=after).order_by("id")[:limit])
        logs.reverse()
    else:
        logs = list(qs.order_by("-id")[:limit])
    newest = logs[0].id if logs else after
    return AuditLogPage(logs=logs, next_cursor=newest)


def audit_log_stats(*, now: datetime | None = None, hours: int = 24) -> dict[str, Any]:
    """Totals per severity, the top 10 actions and hourly counts for the last `hours` hours.

    One grouped query over the window: it reads only (created_at, severity, action), which the
    covering index on created_at holds, so PostgreSQL answers it with an index-only scan.
    """
    now = now or timezone.now()
    start = now - timedelta(hours=hours)
    rows = (
        AuditLog.objects.filter(created_at__gte=start, created_at__lte=now)
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
