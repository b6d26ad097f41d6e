"""Which months of the trail hold the rows of a filter or a search term, so that one that matches
nothing reads no month at all.

Why: audit.timeline reads a page from the newest months back until it has its rows, so a filter
that matches few rows reads further, and one that matches none (errors of an entity type that
never fails, an address nobody used, a request id that wrote nothing) reads every month kept
before it can say so: 28 ms at 1 M rows, 149 ms at 10 M, and more with every year kept
(bench/scale.py). A fold job (beat, every AUDIT_ROLLUP_SECONDS) adds to two small tables the UTC
months that hold rows of each (action, severity, entity type), of each user e-mail address,
request id, user id and entity, and of each three characters in a row of the descriptions (64
bits of their MD5: the table holds no address). A read asks them first, and then
reads only those months and the rows above the fold's mark, which are recent.

What a read is told is a superset: every month that holds a match is listed (a month listed may
hold none, when two values share a hash or a month's partition is gone), so a read never leaves
out a row. The fold takes only rows below the chain's horizon (audit.chain), below which every
row that will ever commit has committed, as audit.rollup does; the rows above its mark are read
from the trail by the reader. The sets only grow: a row added twice is added once (ON CONFLICT
DO NOTHING), so two folds that overlap write nothing wrong.

On PostgreSQL only: SQLite keeps one table, and its reads are the plain queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from audit import timeline
from audit.models import AuditKeyMonth, AuditKindMonth, AuditLog, AuditPresenceState, ChainState
from audit.timeline import Where

Kind = AuditKeyMonth.Kind

# The UTC month of a row, as the partitions cut them (audit.partitions).
_MONTH = "(date_trunc('month', {column} AT TIME ZONE 'UTC'))::date"
# 64 bits of the MD5 of a text, as a signed bigint: the same for the fold and the lookup.
_HASH = "('x' || left(md5({value}), 16))::bit(64)::bigint"
# What a key is made of where it is not the value itself: as the reads compare it (the admin's
# e-mail search is Django's iexact, which is UPPER() = UPPER() on PostgreSQL).
_KEY_OF = {Kind.USER_EMAIL: "upper({value})"}
# Free text is Django's icontains: UPPER(description) LIKE '%' || UPPER(term) || '%' (the term's
# wildcards escaped). A description that holds the term holds each three characters in a row of
# it, so the months that hold every one of the term's are the months that can hold a match.
# UPPER() changes no string's length, so its three in a row are those of the text, in capitals.
# (pg_trgm's own trigrams would not do: they are of words, padded, and lower-cased.)
_TRIGRAMS = "substr(upper({text}), generate_series(1, length({text}) - 2), 3)"


def enabled(using: str = DEFAULT_DB_ALIAS) -> bool:
    return timeline.bounded(using)


# --- the reads ----------------------------------------------------------------------------------


def of_kinds(
    *,
    severities: Sequence[str] | None = None,
    action: str = "",
    entity_type: str = "",
    using: str = DEFAULT_DB_ALIAS,
) -> Where | None:
    """The months with rows of this action (any when blank), one of these severities (any when
    None; none when empty) and this entity type (any when blank); None where reads are not
    bounded."""
    if not enabled(using):
        return None
    above = _mark(using)
    rows = AuditKindMonth.objects.using(using)
    if severities is not None:
        rows = rows.filter(severity__in=list(severities))
    if action:
        rows = rows.filter(action=action)
    if entity_type:
        rows = rows.filter(entity_type=entity_type)
    months = rows.order_by("month").values_list("month", flat=True).distinct()
    return Where(months=tuple(_instant(month) for month in months), above=above)


def of_key(kind: Kind, *values: str, using: str = DEFAULT_DB_ALIAS) -> Where | None:
    """The months with rows whose user e-mail (any case), request id, user id or entity
    (`entity_key`) is one of `values`; None where reads are not bounded."""
    if not enabled(using):
        return None
    above = _mark(using)
    key = _HASH.format(value=_KEY_OF.get(kind, "{value}").format(value="v"))
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT month FROM {AuditKeyMonth._meta.db_table}"  # noqa: S608
            f" WHERE kind = %s AND key IN (SELECT {key} FROM unnest(%s::text[]) AS v)"
            " ORDER BY month",
            [int(kind), list(values)],
        )
        months = [row[0] for row in cursor.fetchall()]
    return Where(months=tuple(_instant(month) for month in months), above=above)


def entity_key(entity_type: str, entity_id: str) -> str:
    """An entity as a key: its type has no '#' (a model's name)."""
    return f"{entity_type}#{entity_id}"


def of_text(text: str, *, using: str = DEFAULT_DB_ALIAS) -> Where | None:
    """The months with rows whose description holds `text` in any case (icontains), or may:
    those that hold every three characters in a row of it. None where reads are not bounded, or
    for a text shorter than three characters (every month may hold it)."""
    if not enabled(using) or len(text) < 3:
        return None
    above = _mark(using)
    key = _HASH.format(value="trigram")
    with connections[using].cursor() as cursor:
        cursor.execute(
            # A trigram of the term that no month holds makes the answer empty.
            f"WITH wanted AS (SELECT DISTINCT {key} AS key"  # noqa: S608 - the model's table
            f" FROM (SELECT {_TRIGRAMS.format(text='%s::text')} AS trigram) AS t)"
            f" SELECT k.month FROM {AuditKeyMonth._meta.db_table} AS k JOIN wanted USING (key)"
            f" WHERE k.kind = %s GROUP BY k.month"
            f" HAVING count(*) = (SELECT count(*) FROM wanted) ORDER BY k.month",
            [text, text, int(Kind.TEXT)],
        )
        months = [row[0] for row in cursor.fetchall()]
    return Where(months=tuple(_instant(month) for month in months), above=above)


def _mark(using: str) -> int:
    # Read before the months: a fold that commits in between adds months, never takes any away,
    # and its rows above this mark are read from the trail anyway.
    state = AuditPresenceState.objects.using(using).filter(pk=1)
    return state.values_list("folded_to_id", flat=True).first() or 0


def _instant(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


# --- the fold -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldRun:
    folded_to_id: int
    rows: int
    # True when the mark stopped short of the horizon (a batch's worth of ids): fold again.
    more: bool = False


def fold(*, using: str = DEFAULT_DB_ALIAS, budget_seconds: float = 20.0) -> FoldRun:
    """Fold the rows up to the chain's horizon, AUDIT_PRESENCE_FOLD_IDS ids per transaction, until
    nothing is left or the budget is spent (a first fold over a long trail goes on next run)."""
    deadline = timezone.now() + timedelta(seconds=budget_seconds)
    total = 0
    while True:
        run = fold_batch(using=using)
        total += run.rows
        if not run.more or timezone.now() >= deadline:
            return FoldRun(run.folded_to_id, total, run.more)


def _horizon(using: str) -> int:
    horizon = ChainState.objects.using(using).filter(pk=1).values_list("horizon_id", flat=True)
    return horizon.first() or 0


def fold_batch(*, using: str = DEFAULT_DB_ALIAS) -> FoldRun:
    """One step of the fold: at most AUDIT_PRESENCE_FOLD_IDS ids above the mark, in one transaction
    that also moves the mark. A fold that finds the mark's row locked by another returns at once
    (that one is folding these rows)."""
    if not enabled(using):
        return FoldRun(0, 0)
    states = AuditPresenceState.objects.using(using)
    states.bulk_create([AuditPresenceState(pk=1)], ignore_conflicts=True)
    with transaction.atomic(using=using):
        state = states.select_for_update(skip_locked=True).filter(pk=1).first()
        if state is None:
            return FoldRun(_mark(using), 0)
        mark, reachable = state.folded_to_id, _horizon(using)
        if reachable <= mark:
            return FoldRun(mark, 0)
        # A batch starts at the next id there is, not at the mark: a first fold (mark 0) or one
        # after a gap in the ids would otherwise step through empty ranges. Safe below the
        # horizon, under which an id not visible now never will be.
        first = _first_id_above(using, mark, reachable)
        upto = (
            reachable
            if first is None
            else min(reachable, first - 1 + settings.AUDIT_PRESENCE_FOLD_IDS)
        )
        rows = _add(using, mark, upto)
        state.folded_to_id, state.folded_at = upto, timezone.now()
        state.save(update_fields=["folded_to_id", "folded_at"])
    return FoldRun(upto, rows, more=upto < reachable)


def _first_id_above(using: str, mark: int, upto: int) -> int | None:
    where, params = _bounds_where(using, mark, upto)
    with connections[using].cursor() as cursor:
        cursor.execute(
            f"SELECT min(id) FROM {AuditLog._meta.db_table}"  # noqa: S608 - the model's table
            f" WHERE id > %s AND id <= %s AND {where}",
            [mark, upto, *params],
        )
        return cursor.fetchone()[0]


def _bounds_where(using: str, mark: int, upto: int) -> tuple[str, list[Any]]:
    # The months that can hold the ids (audit.timeline), so that the batch is planned over those
    # leaves only.
    bounds = timeline.bounds(above=mark, below=upto + 1, using=using)
    assert bounds is not None
    return bounds.where()


def _add(using: str, mark: int, upto: int) -> int:
    """Add the months of the rows with mark < id <= upto; how many rows that was."""
    where, params = _bounds_where(using, mark, upto)
    with connections[using].cursor() as cursor:
        cursor.execute(
            # One statement: the batch is read once, and both sets are added from it. The keys
            # are made distinct before they are hashed (a month repeats a few values many times).
            f"WITH new AS MATERIALIZED ("  # noqa: S608 - the models' tables and fixed SQL
            f" SELECT {_MONTH.format(column='created_at')} AS month,"
            f" action, severity, entity_type, entity_id, user_id, user_email, request_id,"
            f" description"
            f" FROM {AuditLog._meta.db_table} WHERE id > %s AND id <= %s AND {where}),"
            f" kinds AS (INSERT INTO {AuditKindMonth._meta.db_table}"
            f" (action, severity, entity_type, month)"
            f" SELECT DISTINCT action, severity, entity_type, month FROM new"
            f" ON CONFLICT DO NOTHING),"
            f" keys AS (SELECT {int(Kind.USER_EMAIL)} AS kind,"
            f" {_KEY_OF[Kind.USER_EMAIL].format(value='user_email')} AS value, month"
            f" FROM new WHERE user_email <> ''"
            f" UNION SELECT {int(Kind.REQUEST_ID)}, request_id, month FROM new"
            f" WHERE request_id <> ''"
            f" UNION SELECT {int(Kind.TEXT)}, {_TRIGRAMS.format(text='description')}, month"
            f" FROM new WHERE length(description) >= 3"
            f" UNION SELECT {int(Kind.USER_ID)}, user_id::text, month FROM new"
            f" WHERE user_id IS NOT NULL"
            f" UNION SELECT {int(Kind.ENTITY)}, entity_type || '#' || entity_id, month FROM new"
            f" WHERE entity_id <> ''),"
            f" added AS (INSERT INTO {AuditKeyMonth._meta.db_table} (kind, key, month)"
            f" SELECT kind, {_HASH.format(value='value')}, month FROM keys"
            f" ON CONFLICT DO NOTHING)"
            f" SELECT count(*) FROM new",
            [mark, upto, *params],
        )
        return int(cursor.fetchone()[0])
