"""Which of the trail's indexes each read uses, on a filled table.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_index_use.py

Creates (and drops) its own test database from DATABASE_URL's name and migrates it, fills
BENCH_FILL rows (default 200,000) as tests/audit/test_index_plans.py does, VACUUM ANALYZEs, then
runs the reads of the trail: every combination of the audit-log API's filters (audit_log_page),
the admin's list, count and search terms (audit_log_search), the health and alert reads
(money_outcomes, the rollup's windows, the CRITICAL lookback, the digest, the quiet-hours check),
the access recorder's check, data_access_list, latest_row, the chain's and the archive's lookups.
After each read it asks PostgreSQL's statistics which index was scanned (pg_stat_user_indexes,
summed over the partitions of each index of the parent), and prints, per index, how many reads
used it and which. An index no read uses is one that every audit write pays for in vain.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-key-" + "x" * 40)
# The fill and the VACUUM are maintenance: no statement timeout, no call deadline.
os.environ.setdefault("DB_STATEMENT_TIMEOUT", "0")
os.environ.setdefault("DB_CALL_DEADLINE", "0")

import django

django.setup()

from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

FILL = int(os.environ.get("BENCH_FILL", "200000"))
USAGE = """
SELECT x.indexrelid::regclass::text, sum(coalesce(s.idx_scan, 0))
FROM pg_index x, pg_partition_tree(x.indexrelid) p
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = p.relid
WHERE x.indrelid = 'audit_auditlog'::regclass
GROUP BY 1 ORDER BY 1
"""


def usage():
    with connection.cursor() as cursor:
        # Counters reach the shared statistics when a transaction ends; this sends them now.
        cursor.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cursor:
        cursor.execute(USAGE)
        return dict(cursor.fetchall())


def reads(now, newest):
    from audit.models import AuditLog, Severity
    from audit.selectors import (
        activity_counts,
        audit_log_page,
        audit_log_search,
        data_access_list,
        error_rate,
        latest_row,
        money_outcomes,
    )
    from tests.audit.test_index_plans import _combinations

    def admin(term=None, **filters):
        qs = AuditLog.objects.filter(**filters)
        if term:
            qs = audit_log_search(qs, term).rows
        qs = qs.order_by("-id")
        list(qs[:50])
        qs[:1001].count()

    found = [
        (f"API feed {filters}", lambda f=filters: audit_log_page(limit=50, **f))
        for filters in _combinations(now, newest)
    ]
    terms = [
        "PAYMENT_RECEIVED",
        "Invoice #42",
        "staff7@PLANBETA.example",
        "c4ca4238a0b923820dcc509a6f75849b",
        "PB-S-12347",
        "refund",
    ]
    found += [(f"admin search {term!r}", lambda t=term: admin(t)) for term in terms]
    found += [
        ("admin list", admin),
        ("admin list, severity CRITICAL", lambda: admin(severity="CRITICAL")),
        ("money_outcomes 1 h", lambda: money_outcomes(now=now, window=timedelta(hours=1))),
        ("money_outcomes 24 h", lambda: money_outcomes(now=now, window=timedelta(hours=24))),
        ("error_rate", lambda: error_rate(now=now)),
        ("activity_counts 48 h", lambda: activity_counts(now=now, window=timedelta(hours=48))),
        ("data_access_list", lambda: data_access_list(entities=[("Student", 42), ("Lead", 7)])),
        ("latest_row", lambda: latest_row("RECONCILIATION")),
        (
            "alerts: quiet-hours check",
            lambda: AuditLog.objects.filter(created_at__lt=now - timedelta(hours=48)).exists(),
        ),
        (
            "alerts: CRITICAL lookback",
            lambda: list(
                AuditLog.objects.filter(
                    severity=Severity.CRITICAL, created_at__gte=now - timedelta(hours=1)
                ).values_list("id")
            ),
        ),
        (
            "alerts: digest errors 24 h",
            lambda: list(
                AuditLog.objects.filter(
                    created_at__gt=now - timedelta(hours=24), severity__in=["ERROR", "CRITICAL"]
                ).values_list("severity", "action")
            ),
        ),
        (
            "access recorder: the hour's row",
            lambda: AuditLog.objects.filter(
                entity_type="Student",
                entity_id="42",
                action="DATA_ACCESSED",
                user_id=7,
                created_at__gte=now - timedelta(hours=1),
                created_at__lt=now,
            ).exists(),
        ),
        ("chain: rows by id", lambda: list(AuditLog.objects.filter(pk__in=[5, 500, 5000]))),
        (
            "chain: latest checkpoint",
            lambda: AuditLog.objects.filter(action="AUDIT_CHECKPOINT").order_by("-id").first(),
        ),
        (
            "archive: an archive's row",
            lambda: (
                AuditLog.objects.filter(
                    action="AUDIT_ARCHIVED", entity_type="AuditArchive", entity_id="3"
                )
                .order_by("-id")
                .first()
            ),
        ),
        (
            "rollup: rows above the fold",
            lambda: list(AuditLog.objects.filter(id__gt=newest - 100).values_list("id")),
        ),
    ]
    return found


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from audit import timeline
        from tests.audit.test_index_plans import FILL as FILL_SQL

        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute("SET gin_pending_list_limit = '256MB'")
            # Past times written now, in time order: on time (audit.timeline).
            cursor.execute(timeline.PAUSE_LATE)
            cursor.execute(FILL_SQL, {"now": now, "rows": FILL})
            cursor.execute(timeline.RESUME_LATE)
            cursor.execute("RESET gin_pending_list_limit")
            cursor.execute("VACUUM ANALYZE audit_auditlog")
            cursor.execute("SELECT max(id) FROM audit_auditlog")
            (newest,) = cursor.fetchone()
        used_by = {name: [] for name in usage()}
        for label, read in reads(now, newest):
            before = usage()
            read()
            after = usage()
            for name, scans in after.items():
                if scans != before[name]:
                    used_by[name].append(label)
        print(f"{FILL} rows; which index each read of the trail scanned:")
        for name, labels in used_by.items():
            kinds = sorted({label.split(" {")[0] for label in labels})
            print(f"  {name:<28} {len(labels):4} reads: {', '.join(kinds) or 'none'}")
    finally:
        for alias in connections:
            connections[alias].close()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
