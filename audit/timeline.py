"""Reads of the partitioned trail that are planned over the months they need, not every month.

Why: on PostgreSQL the trail is partitioned by month (and class, audit.partitions), and the
planner plans a query over every leaf that its WHERE clause does not rule out by `created_at`:
about five a month kept, 300 at five years. The feed is ordered and paged by id, which tells the
planner nothing about months, so planning every leaf became most of a feed read's time and grew
with the years kept (bench/scale.py, bench/audit_partitions.py). Here the id cursors and "the
newest N" are turned into `created_at` bounds that cannot leave out a row, so each query touches
the few leaves that can hold its answer. SQLite has one table: its reads are the plain queries.

Why the bounds are safe. Ids come from one sequence, so they grow with the moment each row was
inserted, and `created_at` is the writer's clock just before the INSERT. A trigger (migration
0012) writes to AuditLateRow every row whose `created_at` is more than LATE_AFTER from its
statement's time: a spooled row replayed hours later (audit.spool), a writer whose clock is off,
a backfill. Every other row ("on time") was inserted within SLACK of its `created_at` (LATE_AFTER
plus the longest a statement may run), so for two on-time rows a and b, id(a) < id(b) implies
created_at(a) < created_at(b) + MARGIN (twice SLACK). Hence:
* the rows with an id above an on-time row r were all written after r: created_at > r's - MARGIN;
* the rows with an id below r: created_at < r's + MARGIN;
* "the newest N in [lo, hi]" are the newest N overall when the oldest of them is at least MARGIN
  newer than lo: any on-time row older than lo has a lower id than that one.
Late rows are read from their own small table and merged in, never bounded by time. A cursor row
itself gives the bound when it is on time; otherwise the first on-time row of its month does
(an anchor: cached per process, since a row's id and time never change).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

from audit.models import AuditLateRow, AuditLog

# A row this far from its statement's time is recorded as late (the trigger's WHEN clause).
LATE_AFTER = timedelta(hours=1)
# LATE_AFTER plus the longest a statement may take between its start and a row's id being
# drawn (DB_STATEMENT_TIMEOUT is seconds; maintenance runs without one, with rows on time).
SLACK = LATE_AFTER + timedelta(minutes=15)
MARGIN = 2 * SLACK
# The first window tried, at the end the page starts from (its newest or oldest end). A window
# that holds too few rows is followed by one wide enough for the rate of rows it found (four
# times wider when it found none), and last by the whole range: a sparse filter costs a few
# small queries before it costs what a read of every month costs.
FIRST_WIDTH = timedelta(days=2)
# Ranges at most this wide are read in one query: planning two months is cheap, and an `after`
# poll's rows are all near its upper end, where a window grown from below would find them last.
ONE_QUERY = timedelta(days=40)

_TRIGGER = """
CREATE OR REPLACE FUNCTION audit_note_late_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.audit_late_row (id, created_at) VALUES (NEW.id, NEW.created_at)
        ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION audit_note_late_row() FROM PUBLIC;

CREATE TRIGGER audit_auditlog_late
    AFTER INSERT ON {schema}.audit_auditlog
    FOR EACH ROW
    WHEN (NEW.created_at < statement_timestamp() - interval '{late} seconds'
          OR NEW.created_at > statement_timestamp() + interval '{late} seconds')
    EXECUTE FUNCTION audit_note_late_row();
"""

# For a fill of history as the owner (the benchmarks, a test's realistic trail): rows written
# today with past times, in time order, as a trail written live would hold them, which the
# trigger would otherwise record as late one by one.
PAUSE_LATE = "ALTER TABLE audit_auditlog DISABLE TRIGGER audit_auditlog_late"
RESUME_LATE = "ALTER TABLE audit_auditlog ENABLE TRIGGER audit_auditlog_late"

_DROP = """
DROP TRIGGER IF EXISTS audit_auditlog_late ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_note_late_row();
"""


def operations() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """RunPython's forwards and backwards for the late-row trigger; SQLite gets none."""

    def forwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT quote_ident(current_schema())")
            (schema,) = cursor.fetchone()
        late = int(LATE_AFTER.total_seconds())
        schema_editor.execute(_TRIGGER.format(schema=schema, late=late), params=None)

    def backwards(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_DROP, params=None)

    return forwards, backwards


def bounded(using: str) -> bool:
    """Whether reads on this database are bounded by time (the partitioned trail)."""
    return connections[using].vendor == "postgresql"


# --- what is known of the trail's time line, per database ------------------------------------


class _Known:
    """Facts that never stop being true, so one process keeps them: the month anchors (each
    month's first on-time row), and a time no on-time row is older than."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.anchors: dict[datetime, tuple[int, datetime] | None] = {}
        self.oldest: datetime | None = None


_known: dict[tuple[str, str], _Known] = {}
_known_lock = threading.Lock()


def _facts(using: str) -> _Known:
    key = (using, str(connections[using].settings_dict["NAME"]))
    with _known_lock:
        return _known.setdefault(key, _Known())


def forget() -> None:
    """Drop what this process knows (for a trail emptied with its id sequence restarted: the
    benchmarks do that; production never does)."""
    with _known_lock:
        _known.clear()


def _month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: datetime) -> datetime:
    return (month + timedelta(days=32)).replace(day=1)


def _oldest(using: str, now: datetime) -> datetime | None:
    """No on-time row is older than this (None: the trail is empty)."""
    facts = _facts(using)
    if facts.oldest is not None:
        return facts.oldest
    first = (
        AuditLog.objects.using(using)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if first is None:
        return None
    # A row written from now on is on time only if it is at most SLACK older than now.
    facts.oldest = min(first, now - SLACK)
    return facts.oldest


def _anchor(using: str, month: datetime, now: datetime) -> tuple[int, datetime] | None:
    """The first on-time row of a month (id, created_at), or None when it has none (yet)."""
    facts = _facts(using)
    if month in facts.anchors:
        return facts.anchors[month]
    end = _next_month(month)
    late = AuditLateRow.objects.using(using).filter(created_at__gte=month, created_at__lt=end)
    found = (
        AuditLog.objects.using(using)
        .filter(created_at__gte=month, created_at__lt=end)
        .exclude(id__in=late.values("id"))
        .order_by("id")
        .values_list("id", "created_at")
        .first()
    )
    # A month found empty may still get rows while it is not over (and a SLACK after).
    if found is not None or end + SLACK < now:
        with facts.lock:
            facts.anchors[month] = found
    return found


def _months(using: str, now: datetime) -> list[datetime]:
    oldest = _oldest(using, now)
    if oldest is None:
        return []
    months = [_month_start(oldest)]
    last = _month_start(now + MARGIN)
    while months[-1] < last:
        months.append(_next_month(months[-1]))
    return months


def _anchor_bounds(using: str, row_id: int, now: datetime) -> tuple[datetime | None, datetime]:
    """Bounds on the created_at of the on-time rows next to `row_id`: every on-time row with a
    higher id is newer than the first, every one with a lower id older than the second."""
    months = _months(using, now)
    anchors = [(m, _anchor(using, m, now)) for m in _bisect_probe(using, months, row_id, now)]
    below = [a for _, a in anchors if a is not None and a[0] <= row_id]
    above = [a for _, a in anchors if a is not None and a[0] > row_id]
    low = max(below)[1] - MARGIN if below else _oldest(using, now)
    high = min(above)[1] + MARGIN if above else now + MARGIN
    return low, high


def _bisect_probe(using: str, months: list[datetime], row_id: int, now: datetime) -> list[datetime]:
    """The months whose anchors bracket `row_id`, found by bisection over the months (anchors
    grow with their months), empty months stepped over."""
    lo, hi = 0, len(months)
    probed: list[datetime] = []
    while lo < hi:
        mid = (lo + hi) // 2
        # The nearest month at or after mid that has an anchor.
        j = mid
        while j < hi and _anchor(using, months[j], now) is None:
            probed.append(months[j])
            j += 1
        if j == hi:
            hi = mid
            continue
        probed.append(months[j])
        anchor = _anchor(using, months[j], now)
        assert anchor is not None
        if anchor[0] <= row_id:
            lo = j + 1
        else:
            hi = mid
    # The neighbours of the last step, so that both sides are bracketed when they exist.
    for k in (lo - 1, lo):
        if 0 <= k < len(months):
            probed.append(months[k])
    return sorted(set(probed))


def _row_time(using: str, row_id: int, now: datetime) -> tuple[datetime | None, datetime]:
    """Bounds on the created_at of the on-time rows around `row_id` (newer than the first when
    their id is higher, older than the second when it is lower): tight when that row is there
    and on time (its own created_at ± MARGIN), else its month's anchors."""
    low, high = _anchor_bounds(using, row_id, now)
    rows = AuditLog.objects.using(using).filter(id=row_id, created_at__lte=high)
    if low is not None:
        rows = rows.filter(created_at__gte=low)
    late = AuditLateRow.objects.using(using).filter(id=row_id)
    created = rows.exclude(id__in=late.values("id")).values_list("created_at", flat=True).first()
    if created is None:
        return low, high
    return created - MARGIN, created + MARGIN


# --- the reads -------------------------------------------------------------------------------


def _late_and_now(
    using: str, above: int | None, below: int | None
) -> tuple[datetime, dict[int, datetime]]:
    """The database's clock and the late rows in the id range, in one round trip.

    The database's clock, not this process's: the trigger measures lateness against it, and a
    reader whose clock is behind would otherwise leave the newest rows out of its window.
    """
    where, params = ["TRUE"], []
    if above is not None:
        where.append("id > %s")
        params.append(above)
    if below is not None:
        where.append("id < %s")
        params.append(below)
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT statement_timestamp(), array_agg(id), array_agg(created_at)"  # noqa: S608
            f" FROM {AuditLateRow._meta.db_table} WHERE {' AND '.join(where)}",
            params,
        )
        now, ids, times = cursor.fetchone()
    return now, dict(zip(ids or [], times or [], strict=True))


def _span(
    using: str, *, above: int | None, below: int | None, since: datetime | None, now: datetime
) -> tuple[datetime | None, datetime]:
    """The created_at range that holds every on-time row of the id range (and after `since`)."""
    low = _oldest(using, now)
    high = now + MARGIN
    if above is not None:
        around, _ = _row_time(using, above, now)
        if around is not None and (low is None or around > low):
            low = around
    if below is not None:
        _, around = _row_time(using, below, now)
        high = min(high, around)
    if since is not None and (low is None or since > low):
        low = since
    return low, high


@dataclass(frozen=True)
class Where:
    """Where the rows a read selects can be (audit.presence knows it for some filters): in these
    UTC months (each given by its first instant), or among the rows with an id above `above`."""

    months: tuple[datetime, ...]
    above: int

    @staticmethod
    def both(*wheres: Where | None) -> Where | None:
        """Where rows that meet every one of these can be (None: not known for any)."""
        known = [where for where in wheres if where is not None]
        if not known:
            return None
        months = set(known[0].months).intersection(*(where.months for where in known[1:]))
        # A row at or below every mark is in the months of each; one above any mark is read.
        return Where(months=tuple(sorted(months)), above=min(where.above for where in known))


@dataclass(frozen=True)
class Bounds:
    """Where the rows of an id range are, for SQL written by hand: the on-time ones have a
    created_at in [low, high] (low None: no bound below), the late ones are listed."""

    low: datetime | None
    high: datetime
    late: dict[int, datetime]

    def where(self) -> tuple[str, list[Any]]:
        """A condition that every row of the range meets and that names the months they are
        in, for a WHERE clause that also states the id range itself."""
        clauses, params = ["created_at <= %s"], [self.high]
        if self.low is not None:
            clauses.insert(0, "created_at >= %s")
            params.insert(0, self.low)
        on_time = " AND ".join(clauses)
        if not self.late:
            return f"({on_time})", params
        ids, times = list(self.late), sorted(set(self.late.values()))
        # created_at = ANY(...) names the late rows' months to the planner.
        return (
            f"(({on_time} AND NOT (id = ANY(%s))) OR (id = ANY(%s) AND created_at = ANY(%s)))",
            [*params, ids, ids, times],
        )


def bounds(
    *, above: int | None = None, below: int | None = None, using: str = DEFAULT_DB_ALIAS
) -> Bounds | None:
    """The bounds of the rows with above < id < below; None where reads are not bounded."""
    if not bounded(using):
        return None
    now, late = _late_and_now(using, above, below)
    low, high = _span(using, above=above, below=below, since=None, now=now)
    return Bounds(low=low, high=high, late=late)


def newest(
    qs: QuerySet[AuditLog],
    *,
    limit: int,
    above: int | None = None,
    below: int | None = None,
    since: datetime | None = None,
    not_before: datetime | None = None,
    where: Where | None = None,
) -> list[AuditLog]:
    """`qs.order_by("-id")[:limit]`, read from as few months as it can.

    `qs` holds every filter, the id bounds included; `above`/`below` (ids, exclusive) and `since`
    (created_at, inclusive) repeat those bounds so that they can be turned into months.
    `not_before` is a time no selected row was written before (the creation of the entity whose
    history this is), give or take MARGIN. `where`: the only months that can hold a selected
    row besides the newest rows (audit.presence); a read then looks nowhere else.
    """
    return _read(
        qs,
        limit,
        newest_first=True,
        above=above,
        below=below,
        since=since,
        not_before=not_before,
        where=where,
    )


def oldest(
    qs: QuerySet[AuditLog],
    *,
    limit: int,
    above: int | None = None,
    below: int | None = None,
    since: datetime | None = None,
    not_before: datetime | None = None,
    where: Where | None = None,
) -> list[AuditLog]:
    """`qs.order_by("id")[:limit]`, read from as few months as it can (see `newest`)."""
    return _read(
        qs,
        limit,
        newest_first=False,
        above=above,
        below=below,
        since=since,
        not_before=not_before,
        where=where,
    )


def _read(
    qs: QuerySet[AuditLog],
    limit: int,
    *,
    newest_first: bool,
    above: int | None,
    below: int | None,
    since: datetime | None,
    not_before: datetime | None,
    where: Where | None,
) -> list[AuditLog]:
    order = "-id" if newest_first else "id"
    using = qs.db
    if not bounded(using) or limit <= 0:
        return list(qs.order_by(order)[:limit])
    now, late_times = _late_and_now(using, above, below)
    floor, ceiling = _span(using, above=above, below=below, since=since, now=now)
    if not_before is not None and (floor is None or not_before - MARGIN > floor):
        floor = not_before - MARGIN
    late: list[AuditLog] = []
    on_time = qs
    if late_times:
        on_time = qs.exclude(id__in=list(late_times))
        # created_at IN (...) lets the planner keep only those rows' months.
        late = list(qs.filter(id__in=list(late_times), created_at__in=set(late_times.values())))
    rows: list[AuditLog] = []
    if floor is not None and floor <= ceiling:
        ranges = [(floor, ceiling)] if where is None else _ranges(using, where, floor, ceiling, now)
        # Ranges at least MARGIN apart: every on-time row of a later one has a higher id than
        # every one of an earlier one, so the page is the first `limit` rows taken range by range
        # from the end it starts at.
        for lo, hi in reversed(ranges) if newest_first else ranges:
            rows += _read_range(on_time, order, limit - len(rows), lo, hi, newest_first)
            if len(rows) >= limit:
                break
    merged = {row.pk: row for row in rows + late}
    return sorted(merged.values(), key=lambda row: row.pk, reverse=newest_first)[:limit]


def _ranges(
    using: str, where: Where, floor: datetime, ceiling: datetime, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of [floor, ceiling] that `where` says can hold rows, oldest first, each at least
    MARGIN from the next (closer ones are read as one)."""
    # A month is [its first instant, the next month's): the last microsecond is its end.
    wanted = [(month, _next_month(month) - timedelta(microseconds=1)) for month in where.months]
    # The rows above the mark: on time, they are newer than its row (or its month's anchor).
    tail, _ = _row_time(using, where.above, now) if where.above else (None, ceiling)
    wanted.append((tail if tail is not None else floor, ceiling))
    ranges: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(wanted):
        lo, hi = max(lo, floor), min(hi, ceiling)
        if lo > hi:
            continue
        if ranges and lo - ranges[-1][1] < MARGIN:
            ranges[-1] = (ranges[-1][0], max(hi, ranges[-1][1]))
        else:
            ranges.append((lo, hi))
    return ranges


def _read_range(
    on_time: QuerySet[AuditLog],
    order: str,
    limit: int,
    floor: datetime,
    ceiling: datetime,
    newest_first: bool,
) -> list[AuditLog]:
    """The first `limit` on-time rows by `order` with a created_at in [floor, ceiling]."""
    # Grown from the end the page starts at: the newest end, or the oldest.
    width: timedelta | None = None if ceiling - floor <= ONE_QUERY else FIRST_WIDTH
    while True:
        lo, hi = floor, ceiling
        if width is not None and newest_first:
            lo = max(floor, ceiling - width)
        elif width is not None:
            hi = min(ceiling, floor + width)
        rows = list(on_time.filter(created_at__gte=lo, created_at__lte=hi).order_by(order)[:limit])
        if (lo, hi) == (floor, ceiling) or width is None:
            return rows  # the whole range: nothing is left out
        if len(rows) == limit:
            # Full, and its last row far enough inside the window that no row outside it can
            # have an id on this side of it.
            last = rows[-1].created_at
            if (newest_first and last >= lo + MARGIN) or (not newest_first and last <= hi - MARGIN):
                return rows
        # Wide enough for `limit` rows at the rate this window found them, with room.
        width = max(width * 4, width * limit * 3 / (2 * len(rows))) if rows else width * 4


def any_older_than(moment: datetime, *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the trail holds a row written before `moment` (the month that holds it, first)."""
    rows = AuditLog.objects.using(using).filter(created_at__lt=moment)
    if not bounded(using):
        return rows.exists()
    now, late = _late_and_now(using, None, None)
    oldest_known = _oldest(using, now)
    if oldest_known is None:
        return False
    early = {row_id: at for row_id, at in late.items() if at < moment}
    if early and rows.filter(id__in=list(early), created_at__in=set(early.values())).exists():
        return True
    # The oldest on-time row is in the month of `oldest_known` or the next few: look at the
    # months from there up to `moment`, one at a time, each planned over its own leaves.
    month = _month_start(oldest_known)
    while month < moment:
        end = min(_next_month(month), moment)
        if rows.filter(created_at__gte=month, created_at__lt=end).exists():
            return True
        month = _next_month(month)
    return False
