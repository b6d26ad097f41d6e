"""Which transactions have ended, for the /metrics roll-ups (audit counts, money counts).

A roll-up may count the rows below a candidate id only once every transaction that could still
commit a row below it has ended: ids are drawn before commit, so a lower id can become visible
after a higher one. The candidate is drawn, the next transaction id is noted once it has settled
(`next_transaction`), and the mark moves when no transaction older than that is still running
(`ended_before`).
"""

from __future__ import annotations

from django.db import connection


def next_transaction() -> int:
    """The id the next transaction will get (this snapshot's xmax)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        (xmax,) = cursor.fetchone()
    return int(xmax)


def ended_before(xmax: int | None) -> bool:
    """Whether every transaction with an id below `xmax` has ended: the oldest one still running
    (this snapshot's xmin) is not below it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= %s", [xmax])
        return bool(cursor.fetchone()[0])
