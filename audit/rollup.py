"""Counts of the audit trail per hour and per minute, action and severity, for reads of a window.

The 24 h stats, the hourly chart, the error rate and the activity counts need COUNT(*) over
every row of their window; at 800 k rows a day that is 600 ms. Instead a fold job (beat, every
AUDIT_ROLLUP_SECONDS) adds the rows above its mark to `AuditHourCount` (hours of TIME_ZONE, the
chart's) and `AuditMinuteCount` (UTC minutes), and a read of the window
`now - window < created_at <= now` is, in one statement:

* the whole local hours of the window from the hour counts (24 per action and severity a day),
* the whole minutes before the first and after the last of those hours from the minute counts,
* the rows of those hours and minutes above the fold mark (the tail), found by primary key,
* the rows of the two partial minutes at the edges, counted through the covering index on
  created_at (at most two minutes of rows),

so it equals a COUNT over the rows themselves, to the microsecond, and costs about the same at
5 k or 800 k rows a day.

Which rows the fold may take: ids are drawn at INSERT and become visible at COMMIT, so a row of a
longer transaction can appear below ids already visible. The fold never passes the hash chain's
horizon (`ChainState.horizon_id`, audit.chain): below it every row that will ever commit has
committed, so no row is missed when transactions commit out of id order, and each id is folded
exactly once because the mark moves in the same transaction as the counts. The sealer moves the
horizon every few seconds; when beat is down neither moves, the tail grows and reads get slower,
but they stay exact. The trail's rows are never updated or deleted in place (audit.append_only),
so a folded count never goes stale; counts older than AUDIT_ROLLUP_KEEP_DAYS are pruned and a
read that reaches back that far counts those rows from the trail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, F, Min, QuerySet, Sum
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone

from audit.models import (
    AuditHourCount,
    AuditLog,
    AuditMinuteCount,
    AuditRollupState,
    ChainState,
)

MINUTE = timedelta(minutes=1)
# A read is retried when a fold commits between reading the mark and the counts (see
# window_counts); after this many tries it counts the rows themselves.
READ_ATTEMPTS = 3

# (local hour, action, severity) -> rows
HourCounts = Counter[tuple[datetime, str, str]]


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


# --- the fold -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldRun:
    folded_to_id: int
    rows: int
    pruned: int
    # True when the mark stopped short of the horizon (a batch's worth of ids): fold again.
    more: bool = False


def fold(*, using: str = DEFAULT_DB_ALIAS, budget_seconds: float = 20.0) -> FoldRun:
    """Fold the rows up to the chain's horizon into the minute counts, in batches of
    AUDIT_ROLLUP_FOLD_IDS ids, each in its own short transaction, until nothing is left or the
    budget is spent (a first fold over a long trail continues at the next run)."""
    deadline = timezone.now() + timedelta(seconds=budget_seconds)
    total = pruned = 0
    while True:
        run = fold_batch(using=using)
        total, pruned = total + run.rows, pruned + run.pruned
        if not run.more or timezone.now() >= deadline:
            return FoldRun(run.folded_to_id, total, pruned)


def fold_batch(*, using: str = DEFAULT_DB_ALIAS, now: datetime | None = None) -> FoldRun:
    """One step of the fold: at most AUDIT_ROLLUP_FOLD_IDS ids, in one transaction.

    Idempotent and safe to run concurrently: the mark is claimed with a conditional UPDATE on
    the version it was read at, so of two folds that read the same mark one folds and the other
    claims nothing and writes nothing.
    """
    now = now or timezone.now()
    states = AuditRollupState.objects.using(using)
    states.bulk_create([AuditRollupState(pk=1)], ignore_conflicts=True)
    state = states.get(pk=1)
    horizon = ChainState.objects.using(using).filter(pk=1).values_list("horizon_id", flat=True)
    reachable = horizon.first() or 0
    # A batch starts at the next visible id, not at the mark: a first fold (mark 0) or one after
    # a gap in the ids would otherwise walk empty ranges one batch at a time. Skipping is safe up
    # to the horizon, below which an id not visible now never will be.
    following = AuditLog.objects.using(using).filter(id__gt=state.folded_to_id)
    first = following.aggregate(first=Min("id"))["first"]
    start = state.folded_to_id if first is None else max(state.folded_to_id, first - 1)
    upto = max(state.folded_to_id, min(reachable, start + settings.AUDIT_ROLLUP_FOLD_IDS))
    keep_from = _floor_minute(now - timedelta(days=settings.AUDIT_ROLLUP_KEEP_DAYS))
    prune = state.complete_from is None or keep_from - state.complete_from >= timedelta(hours=1)
    zone = settings.TIME_ZONE
    if upto == state.folded_to_id and not prune and state.hour_zone == zone:
        return FoldRun(state.folded_to_id, 0, 0)
    complete_from = keep_from if prune else state.complete_from
    with transaction.atomic(using=using):
        if connections[using].vendor == "postgresql":
            # Another fold holds the mark: it is folding these rows; do not wait for it (a long
            # first fold would outlast DB_LOCK_TIMEOUT).
            mine = states.select_for_update(skip_locked=True).filter(pk=1)
            if mine.values_list("pk", flat=True).first() is None:
                return FoldRun(state.folded_to_id, 0, 0)
        # The claim: on PostgreSQL under the row lock taken above, on SQLite its first write takes
        # the database's write lock; either way a fold that read an older version claims nothing.
        claimed = states.filter(pk=1, version=state.version).update(
            version=F("version") + 1,
            folded_to_id=upto,
            complete_from=complete_from,
            folded_at=now,
            hour_zone=zone,
        )
        if not claimed:
            # Another fold moved the mark since it was read here: read it again rather than stop,
            # or two folds that keep losing to each other could both stop short of the horizon.
            return FoldRun(state.folded_to_id, 0, 0, more=True)
        minutes = AuditMinuteCount.objects.using(using)
        hours = AuditHourCount.objects.using(using)
        deleted = 0
        if prune:
            deleted, _ = minutes.filter(minute__lt=complete_from).delete()
            hours.filter(hour__lt=complete_from).delete()
        if state.hour_zone != zone:
            # Hours of another zone start at other instants (Kolkata's at half past UTC's):
            # count them again from the minutes, which every zone's hours are made of.
            hours.all().delete()
            _upsert(
                AuditHourCount,
                minutes.annotate(bucket=TruncHour("minute", tzinfo=ZoneInfo(zone))),
                Sum("count"),
                zone=zone,
                using=using,
            )
        rows = 0
        if upto > state.folded_to_id:
            # Rows older than the kept minutes are left out (a spooled row can be days old):
            # those minutes are read from the trail.
            new = AuditLog.objects.using(using).filter(
                id__gt=state.folded_to_id, id__lte=upto, created_at__gte=complete_from
            )
            rows = _upsert(
                AuditMinuteCount,
                new.annotate(bucket=TruncMinute("created_at", tzinfo=UTC)),
                Count("*"),
                zone="UTC",
                using=using,
            )
            _upsert(
                AuditHourCount,
                new.annotate(bucket=TruncHour("created_at", tzinfo=ZoneInfo(zone))),
                Count("*"),
                zone=zone,
                using=using,
            )
    return FoldRun(upto, rows, deleted, more=upto < reachable)


def _upsert(
    model: type[AuditMinuteCount] | type[AuditHourCount],
    rows: QuerySet[Any],
    n: Count | Sum,
    *,
    zone: str,
    using: str,
) -> int:
    """Add the counts of `rows` (annotated with their `bucket`, truncated in `zone`) to
    `model`; how many rows that was."""
    grouped = rows.values_list("bucket", "action", "severity").annotate(n=n).order_by()
    bucket = "minute" if model is AuditMinuteCount else "hour"
    if connections[using].vendor == "postgresql":
        # One statement: the grouped rows go straight into the upsert, with no round trip per
        # bucket (a first fold over a long trail folds millions of rows).
        sql, params = grouped.query.sql_with_params()
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"WITH grouped AS ({sql}),"  # noqa: S608 - the names are the model's
                f" added AS (INSERT INTO {model._meta.db_table} AS t"
                f" ({bucket}, action, severity, count)"
                # DATE_TRUNC gives the zone's wall time; back to an instant in that zone.
                " SELECT bucket AT TIME ZONE %s, action, severity, n FROM grouped"
                f" ON CONFLICT ({bucket}, action, severity)"
                " DO UPDATE SET count = t.count + EXCLUDED.count)"
                " SELECT COALESCE(SUM(n), 0) FROM grouped",
                (*params, zone),
            )
            return int(cursor.fetchone()[0])
    # SQLite: writers are serialised by the claim above, so read-then-write is safe here.
    counts = {(b, a, s): int(c) for b, a, s, c in grouped}
    if not counts:
        return 0
    existing = model.objects.using(using).filter(**{f"{bucket}__in": {b for b, _, _ in counts}})
    have = {(getattr(c, bucket), c.action, c.severity): c.count for c in existing}
    added: list[Any] = [
        model(**{bucket: b}, action=a, severity=s, count=have.get((b, a, s), 0) + c)
        for (b, a, s), c in counts.items()
    ]
    model.objects.using(using).bulk_create(
        added,
        update_conflicts=True,
        unique_fields=[bucket, "action", "severity"],
        update_fields=["count"],
    )
    return sum(counts.values())


# --- the read -----------------------------------------------------------------------------------


def window_counts(
    *,
    now: datetime,
    window: timedelta,
    using: str = DEFAULT_DB_ALIAS,
    actions: tuple[str, ...] | None = None,
) -> HourCounts:
    """Rows per (local hour, action, severity) with `now - window < created_at <= now`, exact:
    the same numbers as a COUNT over the rows (audit.selectors.in_window), read from the hour
    and minute counts for the window's whole hours and minutes. `actions`: only these (None:
    all)."""
    start = now - window
    # Whole minutes [lo, hi) from the rollup; the window's partial first minute (start, lo) and
    # its last one [hi, now] from the rows (at most two minutes of them).
    lo, hi = _floor_minute(start) + MINUTE, _floor_minute(now)
    for _ in range(READ_ATTEMPTS):
        version, folded_to_id, complete_from, zone = _mark(using)
        band_lo = max(lo, complete_from) if complete_from else lo
        if band_lo >= hi:
            return _hour_counts([_raw(using, actions, gt=start, lte=now)])[0]
        parts: list[QuerySet[Any]] = [
            _raw(using, actions, gt=start, lt=band_lo),
            _raw(using, actions, gte=hi, lte=now),
            # The tail: rows not folded yet. By id, through the primary key (seconds of rows
            # while the fold runs), then their time; the literal mark lets the planner see that.
            _raw(using, actions, gte=band_lo, lt=hi).filter(id__gt=folded_to_id),
        ]
        whole = _whole_hours(band_lo, hi, zone)
        if whole is None:
            parts.append(_counted(AuditMinuteCount, using, actions, band_lo, hi))
        else:
            # The whole local hours from the hour counts, the minutes before and after them from
            # the minute counts.
            parts.append(_counted(AuditMinuteCount, using, actions, band_lo, whole[0]))
            parts.append(_counted(AuditHourCount, using, actions, *whole))
            parts.append(_counted(AuditMinuteCount, using, actions, whole[1], hi))
        counts, version_read = _hour_counts(parts)
        # The counts must come from the fold whose mark this read used: one that committed in
        # between would have counted the rows above the old mark twice. Every fold moves the
        # version up, and the counts' statement reads it too, so an equal version proves it.
        if version_read == version:
            return counts
    return _hour_counts([_raw(using, actions, gt=start, lte=now)])[0]


def _whole_hours(lo: datetime, hi: datetime, zone: str) -> tuple[datetime, datetime] | None:
    """The local hours that lie wholly in [lo, hi), as [first hour's start, last one's end), if
    the hour counts are of the time zone the read is in and there is at least one."""
    if zone != timezone.get_current_timezone_name():
        return None
    first = timezone.localtime(lo).replace(minute=0, second=0, microsecond=0)
    if first < lo:
        first = (first.astimezone(UTC) + timedelta(hours=1)).astimezone(first.tzinfo)
    end = timezone.localtime(hi).replace(minute=0, second=0, microsecond=0)
    return (first, end) if first < end else None


def _mark(using: str) -> tuple[int, int, datetime | None, str]:
    row = (
        AuditRollupState.objects.using(using)
        .filter(pk=1)
        .values_list("version", "folded_to_id", "complete_from", "hour_zone")
        .first()
    )
    return row if row is not None else (0, 0, None, "")


def _raw(using: str, actions: tuple[str, ...] | None, **bounds: datetime) -> QuerySet[AuditLog]:
    rows = AuditLog.objects.using(using).filter(
        **{f"created_at__{lookup}": moment for lookup, moment in bounds.items()}
    )
    return rows if actions is None else rows.filter(action__in=actions)


def _counted(
    model: type[AuditMinuteCount] | type[AuditHourCount],
    using: str,
    actions: tuple[str, ...] | None,
    lo: datetime,
    hi: datetime,
) -> QuerySet[Any]:
    bucket = "minute" if model is AuditMinuteCount else "hour"
    rows = model.objects.using(using).filter(**{f"{bucket}__gte": lo, f"{bucket}__lt": hi})
    return rows if actions is None else rows.filter(action__in=actions)


def _hour_counts(parts: list[QuerySet[Any]]) -> tuple[HourCounts, int]:
    """The parts' rows per (local hour, action, severity), and the rollup's version in the same
    snapshot (0 before the first fold)."""
    grouped = []
    for part in parts:
        column = {AuditLog: "created_at", AuditMinuteCount: "minute"}.get(part.model, "hour")
        # The hour counts' hours are local already, but truncated like the others all parts give
        # the same column type (PostgreSQL would otherwise read local times as UTC ones).
        n = Count("*") if part.model is AuditLog else Sum("count")
        grouped.append(
            part.annotate(h=TruncHour(column))
            .values_list("h", "action", "severity")
            .annotate(n=n)
            .order_by()
        )
    first, *rest = grouped
    union = first.union(*rest, all=True) if rest else first
    sql, params = union.query.sql_with_params()
    # One statement (UNION ALL), so one snapshot: the rollup, the tail and the version that says
    # which fold they are of are read together. The version's row has no hour.
    sql += (
        f" UNION ALL SELECT NULL, NULL, NULL, version"  # noqa: S608 - the model's table
        f" FROM {AuditRollupState._meta.db_table} WHERE id = 1"
    )
    counts: HourCounts = Counter()
    hours: dict[Any, datetime] = {}
    version = 0
    # Through the cursor rather than the queryset: Django would convert the hour of each of the
    # ~1,500 rows of a busy day (half the read's time); there are only 25 distinct hours.
    with connections[union.db].cursor() as cursor:
        cursor.execute(sql, params)
        for raw, action, severity, n in cursor.fetchall():
            if raw is None:
                version = int(n)
                continue
            hour = hours.get(raw)
            if hour is None:
                hour = hours[raw] = _local_hour(raw)
            counts[(hour, action, severity)] += int(n)
    return counts, version


def _local_hour(raw: datetime | str) -> datetime:
    # What TruncHour's own conversion does: the database gives the wall time of the current
    # zone's hour (PostgreSQL a naive datetime, SQLite its text).
    wall = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return timezone.make_aware(wall.replace(tzinfo=None), timezone.get_current_timezone())
