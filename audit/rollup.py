"""Counts of the audit trail per minute, action and severity, for reads of a time window.

The 24 h stats, the hourly chart, the error rate and the activity counts need COUNT(*) over
every row of their window; at 800 k rows a day that is 600 ms. Instead a fold job (beat, every
AUDIT_ROLLUP_SECONDS) adds the rows above its mark to `AuditMinuteCount`, and a read of the
window `now - window < created_at <= now` is, in one statement:

* the whole minutes of the window from the rollup,
* plus the rows of those minutes above the fold mark (the tail), found by primary key,
* plus the rows of the two partial minutes at the edges, counted through the covering index on
  created_at (at most two minutes of rows),

so it equals a COUNT over the rows themselves, to the microsecond, and costs the same at 5 k or
800 k rows a day.

Which rows the fold may take: ids are drawn at INSERT and become visible at COMMIT, so a row of a
longer transaction can appear below ids already visible. The fold never passes the hash chain's
horizon (`ChainState.horizon_id`, audit.chain): below it every row that will ever commit has
committed, so no row is missed when transactions commit out of id order, and each id is folded
exactly once because the mark moves in the same transaction as the counts. The sealer moves the
horizon every few seconds; when beat is down neither moves, the tail grows and reads get slower,
but they stay exact. The trail's rows are never updated or deleted in place (audit.append_only),
so a folded count never goes stale; minutes older than AUDIT_ROLLUP_KEEP_DAYS are pruned and a
read that reaches back that far counts those rows from the trail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncHour, TruncMinute
from django.utils import timezone

from audit.models import AuditLog, AuditMinuteCount, AuditRollupState, ChainState

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

    Idempotent and safe to run concurrently: the mark is claimed with a conditional UPDATE
    (filter on the old mark), so of two folds that read the same mark one folds and the other
    finds nothing claimed and writes nothing.
    """
    now = now or timezone.now()
    states = AuditRollupState.objects.using(using)
    states.bulk_create([AuditRollupState(pk=1)], ignore_conflicts=True)
    state = states.get(pk=1)
    horizon = ChainState.objects.using(using).filter(pk=1).values_list("horizon_id", flat=True)
    reachable = horizon.first() or 0
    upto = min(reachable, state.folded_to_id + settings.AUDIT_ROLLUP_FOLD_IDS)
    keep_from = _floor_minute(now - timedelta(days=settings.AUDIT_ROLLUP_KEEP_DAYS))
    prune = state.complete_from is None or keep_from - state.complete_from >= timedelta(hours=1)
    if upto <= state.folded_to_id and not prune:
        return FoldRun(state.folded_to_id, 0, 0)
    complete_from = keep_from if prune else state.complete_from
    with transaction.atomic(using=using):
        # The claim is the first write: on PostgreSQL it locks the mark's row until COMMIT, on
        # SQLite it takes the database's write lock; a concurrent fold waits and then finds the
        # mark moved.
        claimed = states.filter(
            pk=1, folded_to_id=state.folded_to_id, complete_from=state.complete_from
        ).update(
            folded_to_id=max(upto, state.folded_to_id),
            complete_from=complete_from,
            folded_at=now,
        )
        if not claimed:
            return FoldRun(state.folded_to_id, 0, 0)
        rows = 0
        if upto > state.folded_to_id:
            # Rows older than the kept minutes are left out (a spooled row can be days old):
            # those minutes are read from the trail.
            new = AuditLog.objects.using(using).filter(
                id__gt=state.folded_to_id, id__lte=upto, created_at__gte=complete_from
            )
            rows = _add_counts(new, using=using)
        deleted = 0
        if prune:
            deleted, _ = AuditMinuteCount.objects.using(using).filter(minute__lt=keep_from).delete()
    return FoldRun(max(upto, state.folded_to_id), rows, deleted, more=upto < reachable)


def _add_counts(rows: QuerySet[AuditLog], *, using: str) -> int:
    """Add the rows' counts to their minutes; how many rows that was."""
    if connections[using].vendor == "postgresql":
        # One statement: the grouped rows go straight into the upsert, with no round trip per
        # minute (a first fold over a long trail folds millions of rows).
        sql, params = (
            rows.annotate(m=TruncMinute("created_at", tzinfo=UTC))
            .values("m", "action", "severity")
            .annotate(n=Count("*"))
            .order_by()
            .query.sql_with_params()
        )
        table = AuditMinuteCount._meta.db_table
        with connections[using].cursor() as cursor:
            cursor.execute(
                f"WITH grouped AS ({sql}),"  # noqa: S608 - the table name is the model's
                f" added AS (INSERT INTO {table} AS t (minute, action, severity, count)"
                " SELECT * FROM grouped"
                " ON CONFLICT (minute, action, severity)"
                " DO UPDATE SET count = t.count + EXCLUDED.count)"
                " SELECT COALESCE(SUM(n), 0) FROM grouped",
                params,
            )
            return int(cursor.fetchone()[0])
    # SQLite: its writers are serialised by the claim above, so read-then-write is safe here.
    grouped = {
        (row["m"], row["action"], row["severity"]): row["n"]
        for row in rows.annotate(m=TruncMinute("created_at", tzinfo=UTC))
        .values("m", "action", "severity")
        .annotate(n=Count("*"))
        .order_by()
    }
    if not grouped:
        return 0
    existing = AuditMinuteCount.objects.using(using).filter(
        minute__in={minute for minute, _, _ in grouped}
    )
    have = {(c.minute, c.action, c.severity): c.count for c in existing}
    AuditMinuteCount.objects.using(using).bulk_create(
        [
            AuditMinuteCount(minute=m, action=a, severity=s, count=have.get((m, a, s), 0) + n)
            for (m, a, s), n in grouped.items()
        ],
        update_conflicts=True,
        unique_fields=["minute", "action", "severity"],
        update_fields=["count"],
    )
    return sum(grouped.values())


# --- the read -----------------------------------------------------------------------------------


def window_counts(
    *,
    now: datetime,
    window: timedelta,
    using: str = DEFAULT_DB_ALIAS,
    actions: tuple[str, ...] | None = None,
) -> HourCounts:
    """Rows per (local hour, action, severity) with `now - window < created_at <= now`, exact:
    the same numbers as a COUNT over the rows (audit.selectors.in_window), read from the minute
    counts for the window's whole minutes. `actions`: only these actions (None: all)."""
    start = now - window
    # Whole minutes [lo, hi) from the rollup; the window's partial first minute (start, lo) and
    # its last one [hi, now] from the rows (at most two minutes of them).
    lo, hi = _floor_minute(start) + MINUTE, _floor_minute(now)
    for _ in range(READ_ATTEMPTS):
        mark = _mark(using)
        folded_to_id, complete_from = mark
        band_lo = max(lo, complete_from) if complete_from else lo
        if band_lo >= hi:
            return _hour_counts([_raw(using, actions, gt=start, lte=now)])
        parts = [
            _raw(using, actions, gt=start, lt=band_lo),
            _raw(using, actions, gte=hi, lte=now),
            _rolled_up(using, actions, band_lo, hi),
            # The tail: rows not folded yet. By id, through the primary key (a few seconds of rows
            # while the fold runs), then their time; the literal mark lets the planner see that.
            _raw(using, actions, gte=band_lo, lt=hi).filter(id__gt=folded_to_id),
        ]
        counts = _hour_counts(parts)
        # The counts and the mark must come from the same fold: one that committed in between
        # would have counted the rows above the old mark twice. Folds commit a few times a
        # minute and only ever move the mark up, so an unchanged mark after the read proves it.
        if _mark(using) == mark:
            return counts
    return _hour_counts([_raw(using, actions, gt=start, lte=now)])


def _mark(using: str) -> tuple[int, datetime | None]:
    row = (
        AuditRollupState.objects.using(using)
        .filter(pk=1)
        .values_list("folded_to_id", "complete_from")
        .first()
    )
    return row if row is not None else (0, None)


def _raw(using: str, actions: tuple[str, ...] | None, **bounds: datetime) -> QuerySet[AuditLog]:
    rows = AuditLog.objects.using(using).filter(
        **{f"created_at__{lookup}": moment for lookup, moment in bounds.items()}
    )
    return rows if actions is None else rows.filter(action__in=actions)


def _rolled_up(
    using: str, actions: tuple[str, ...] | None, lo: datetime, hi: datetime
) -> QuerySet[AuditMinuteCount]:
    rows = AuditMinuteCount.objects.using(using).filter(minute__gte=lo, minute__lt=hi)
    return rows if actions is None else rows.filter(action__in=actions)


def _hour_counts(parts: list[QuerySet[Any]]) -> HourCounts:
    grouped = []
    for part in parts:
        column = "minute" if part.model is AuditMinuteCount else "created_at"
        n = Sum("count") if part.model is AuditMinuteCount else Count("*")
        grouped.append(
            part.annotate(hour=TruncHour(column))
            .values_list("hour", "action", "severity")
            .annotate(n=n)
            .order_by()
        )
    # One statement (UNION ALL), so one snapshot: the rollup and the tail are read together.
    first, *rest = grouped
    counts: HourCounts = Counter()
    for hour, action, severity, n in first.union(*rest, all=True) if rest else first:
        counts[(hour, action, severity)] += int(n)
    return counts
