"""Reads of the audit trail for the audit-log API, the activity dashboard, health and alerts.

Every read is keyset-based on the primary key (ids grow with time): no OFFSET, and no COUNT(*)
over the whole table. Indexes behind each query are in migrations 0003 and 0010.

"The last hour" (or any window ending now) means `now - window < created_at <= now`, everywhere:
`in_window` is its one definition, so the health check and the alert rule count the same rows;
the counts of a window (stats, error rate, activity) come from audit.rollup, which keeps to it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from audit import presence, timeline
from audit.models import Action, AuditLog, Severity
from audit.rollup import window_counts

ERROR_SEVERITIES = (Severity.ERROR, Severity.CRITICAL)
# Rows that record a client's mistake rather than ours. Refused logins are the only client mistake
# that writes a row (4xx answers, throttled requests and invalid forms write none); they are
# WARNING, and they are left out of the error rate's events as well, so that someone guessing
# passwords cannot dilute a real outage's rate until health looks better than it is.
CLIENT_MISTAKE_ACTIONS = (Action.LOGIN_FAILED,)


# Free text (the API's `q`, the admin's search). The trigram index finds a pattern by its
# three-character pieces: a pattern without three letters or digits in a row has none, and the
# index would be read whole. The upper bound keeps the pattern's pieces (and the request) small.
SEARCH_MIN_LENGTH = 3
SEARCH_MAX_LENGTH = 100
UNSEARCHABLE_MESSAGE = "Search for at least three letters or digits in a row."
_THREE_IN_A_ROW = re.compile(r"[^\W_]{3}")
# The admin's search box: a term of one of these shapes is looked up through its own index.
_ENTITY_TERM = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,63})\s*#\s*(\S{1,64})")
_EMAIL_TERM = re.compile(r"[^@\s]+@[^@\s]+")
_REQUEST_ID_TERM = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The request ids the app draws (audit.context, uuid4().hex) and the UUIDs a proxy in front of it
# sends: a term of these shapes is a request id, never words of a description.
_ISSUED_REQUEST_ID = re.compile(
    r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def searchable(text: str) -> bool:
    """Whether free text can be looked up through the trigram index."""
    return bool(_THREE_IN_A_ROW.search(text))


class UnsearchableTerm(ValueError):
    pass


@dataclass(frozen=True)
class Search:
    """The rows an admin search term names, and where they can be (audit.presence; None when
    that is not known), for the list's read (audit.timeline)."""

    rows: QuerySet[AuditLog]
    where: timeline.Where | None = None


def audit_log_search(qs: QuerySet[AuditLog], term: str) -> Search:
    """The rows of `qs` that the admin's search `term` names, each shape through its own index.

    An action code (`PAYMENT_RECEIVED`) filters by action; `Invoice #7` (or `Invoice#7`) is that
    entity's history; an e-mail address is what that person did (any case); a request id that
    some row carries is that request's rows, and one of the shapes the app issues (32 hex digits,
    a UUID) is only ever a request id. Anything else is free text in the description (trigram
    index), and must be searchable (else UnsearchableTerm). One shape per term rather than every
    field OR-ed together: an OR over several indexes collects every match of each before it can
    sort, which for a common value is a large part of the table. Every term comes with the
    months that can hold its rows, so that one nobody used reads no month.
    """
    term = term.strip()
    if term in Action.values:
        return Search(qs.filter(action=term), presence.of_kinds(action=term))
    if entity := _ENTITY_TERM.fullmatch(term):
        where = presence.of_key(presence.Kind.ENTITY, presence.entity_key(entity[1], entity[2]))
        return Search(qs.filter(entity_type=entity[1], entity_id=entity[2]), where)
    if _EMAIL_TERM.fullmatch(term) and len(term) <= 254:
        where = presence.of_key(presence.Kind.USER_EMAIL, term)
        return Search(qs.filter(user_email__iexact=term), where)
    if _REQUEST_ID_TERM.fullmatch(term):
        where = presence.of_key(presence.Kind.REQUEST_ID, term)
        if _ISSUED_REQUEST_ID.fullmatch(term) or timeline.newest(
            AuditLog.objects.filter(request_id=term).only("id", "created_at"), limit=1, where=where
        ):
            return Search(qs.filter(request_id=term), where)
    if len(term) > SEARCH_MAX_LENGTH:
        raise UnsearchableTerm(f"Search for at most {SEARCH_MAX_LENGTH} characters.")
    if not searchable(term):
        raise UnsearchableTerm(UNSEARCHABLE_MESSAGE)
    return Search(qs.filter(description__icontains=term), presence.of_text(term))


@dataclass(frozen=True)
class AuditLogPage:
    logs: list[AuditLog]
    next_cursor: int | None


def audit_log_page(
    *,
    limit: int = 50,
    after: int | None = None,
    written_after: datetime | None = None,
    **filters: Any,
) -> AuditLogPage:
    """One page of the feed, newest first; `filters` are audit_log_matching's.

    Without `after`: the newest `limit` entries (older than `before` if given). With `after`: the
    `limit` entries right after that id, oldest of the new ones first taken, so a poller that keeps
    passing `nextCursor` back as `after` walks forward through every entry without a gap, even
    when more than `limit` arrived between two polls. `next_cursor` is the highest id seen (or
    `after` itself when nothing is new): the value for the next poll's `after`.
    `written_after`: no matching row was written before then (the creation of the entity whose
    history this is); it only narrows what is read (audit.timeline).
    """
    qs = audit_log_matching(after=after, **filters)
    below, since = filters.get("before"), filters.get("since")
    where = _where(**filters)
    if after is not None:
        logs = timeline.oldest(
            qs,
            limit=limit,
            above=after,
            below=below,
            since=since,
            not_before=written_after,
            where=where,
        )
        logs.reverse()
    else:
        logs = timeline.newest(
            qs, limit=limit, below=below, since=since, not_before=written_after, where=where
        )
    newest = logs[0].id if logs else after
    return AuditLogPage(logs=logs, next_cursor=newest)


def _where(
    *,
    errors_only: bool = False,
    severity: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    related: Sequence[tuple[str, str]] = (),
    q: str | None = None,
    **others: Any,
) -> timeline.Where | None:
    """The months that can hold rows of the filters by severity, action, entity type, entity,
    user and text (audit.presence), when there are any: a filter that matches nothing then reads
    no month."""
    wheres: list[timeline.Where | None] = []
    entity_id = others.get("entity_id")
    if entity_type and entity_id:
        # An entity's history: its rows and its related entities' (whose types differ).
        entities = [(entity_type, entity_id), *related]
        keys = [presence.entity_key(kind, str(key)) for kind, key in entities]
        wheres.append(presence.of_key(presence.Kind.ENTITY, *keys))
    if related:
        entity_type = None
    if errors_only or severity or action or entity_type:
        severities: list[str] | None = None
        if errors_only:
            severities = [s for s in ERROR_SEVERITIES if s == severity or not severity]
        elif severity:
            severities = [severity]
        wheres.append(
            presence.of_kinds(
                severities=severities, action=action or "", entity_type=entity_type or ""
            )
        )
    if q:
        wheres.append(presence.of_text(q))
    if others.get("user_id") is not None:
        wheres.append(presence.of_key(presence.Kind.USER_ID, str(others["user_id"])))
    return timeline.Where.both(*wheres)


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
    q: str | None = None,
) -> QuerySet[AuditLog]:
    """Every entry that the audit-log API's filters select, unordered (the feed and the export).

    `related` (entity type, id) pairs belong to the history of the entity filtered by (an
    invoice's payments): their rows match too.

    `q` is free text found anywhere in the description, case-insensitively (icontains). On
    PostgreSQL Django writes it as `UPPER(description) LIKE UPPER('%q%')`, which is the expression
    of the trigram index of migration 0010, so even a rare word is found without reading the
    table; SQLite reads the rows (the quick start is small).
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
    if q:
        qs = qs.filter(description__icontains=q)
    if before is not None:
        qs = qs.filter(id__lt=before)
    return qs


def latest_row(action: str, *, using: str = DEFAULT_DB_ALIAS) -> Mapping[str, Any] | None:
    """The newest row of an action (its id, time, severity, source and metadata), or None."""
    rows = AuditLog.objects.using(using).filter(action=action)
    # Where the action's rows are: an action that never happened reads no month.
    where = presence.of_kinds(action=action, using=using)
    found = timeline.newest(
        rows.only("created_at", "severity", "source", "metadata"), limit=1, where=where
    )
    if not found:
        return None
    row = found[0]
    return {
        "id": row.pk,
        "created_at": row.created_at,
        "severity": row.severity,
        "source": row.source,
        "metadata": row.metadata,
    }


def any_row_before(moment: datetime, *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the trail holds a row written before `moment` (a system that young has none)."""
    return timeline.any_older_than(moment, using=using)


def data_access_list(*, entities: list[tuple[str, Any]], limit: int = 20) -> list[AuditLog]:
    """Who read these entities (DATA_ACCESSED rows), newest first: "who looked at this student"."""
    match = Q()
    for entity_type, entity_id in entities:
        match |= Q(entity_type=entity_type, entity_id=str(entity_id))
    rows = AuditLog.objects.filter(match, action=Action.DATA_ACCESSED).only(
        "created_at", "user_name", "user_email", "entity_type", "entity_id", "metadata"
    )
    return timeline.newest(rows, limit=limit)


def audit_log_stats(*, now: datetime | None = None, hours: int = 24) -> dict[str, Any]:
    """Totals per severity, the top 10 actions and hourly counts for the last `hours` hours.

    Read from the hour and minute counts (audit.rollup): the same numbers as a COUNT over the
    window's rows, at a cost that does not grow with the rows a day.
    """
    now = now or timezone.now()
    per_severity: Counter[str] = Counter()
    per_action: Counter[str] = Counter()
    per_hour: dict[datetime, list[int]] = {}
    for (hour, action, severity), n in window_counts(
        now=now, window=timedelta(hours=hours)
    ).items():
        per_severity[severity] += n
        per_action[action] += n
        bucket = per_hour.setdefault(hour, [0, 0])
        bucket[0] += n
        if severity in ERROR_SEVERITIES:
            bucket[1] += n

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
    never errors; see CLIENT_MISTAKE_ACTIONS for the rows that are not events either. Read from
    the hour and minute counts (audit.rollup), exact like a COUNT over the window's rows.
    """
    per_severity: Counter[str] = Counter()
    for (_, action, severity), n in window_counts(now=now, window=window, using=using).items():
        if action not in CLIENT_MISTAKE_ACTIONS:
            per_severity[severity] += n
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
    counted = (Action.LEAD_TO_STUDENT_CONVERSION, Action.PAYMENT_RECEIVED)
    per_action: Counter[str] = Counter()
    for (_, action, severity), n in window_counts(
        now=now, window=window, using=using, actions=counted
    ).items():
        if severity == Severity.INFO:
            per_action[action] += n
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
