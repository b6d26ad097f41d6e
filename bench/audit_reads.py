"""Reads of the audit log that must not grow with it: the admin list, its search, the API's `q`
and the rarer filter combinations, old against new, and what the new indexes cost each write.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_reads.py

Creates (and drops) its own test database from DATABASE_URL's name, migrates it, fills
audit_auditlog with BENCH_ROWS rows (default 1,000,000) by generate_series, VACUUM ANALYZEs it
(as autovacuum keeps a real table), then prints, each the median of BENCH_RUNS full requests
through Django (default 15, after 2 warm-ups), measured side by side in the same run:

  * the admin list: "old" is the admin as it was (Django's paginator, which COUNTs every matching
    row, OFFSET pages, search OR-ed over request id, entity id and a substring of the e-mail),
    mounted at /old-admin/ by this script; "new" is audit/admin.py;
  * GET /api/system/audit-logs?q=... (rare and common text, with type=errors), and the same with
    the trigram index dropped inside a transaction that is rolled back (what `q` would cost
    without it);
  * errors of one entity type (type=errors&entityType=...), with and without the partial index
    made for it (dropped the same way);
  * what the three indexes of migration 0010 cost each audit row: on the server, rounds of 5,000
    single-row INSERTs in a PL/pgSQL loop, alternately with the indexes and with them dropped
    inside the round's transaction (each round rolled back), median µs per row; and end to end,
    audit_record with a business row in its own transaction (commit included), with the indexes,
    then dropped, then built again and with once more, BENCH_WRITES writes per block (default
    2000). On a busy machine the end-to-end figure is mostly noise; the server's is the cost.

BENCH_SECTIONS (default admin,api,inserts,writes) runs only some of them.

The data: ids grow with time, 2 s apart; INFO 90 %, WARNING 6 %, ERROR 3.5 %, CRITICAL 0.5 %;
40 staff users; entity types Lead 30 %, Invoice 20 %, Payment 10 %, Student 10 %, User 10 %,
none 20 %, with 1 % of the rows about a Batch (the rare type); a quarter of the descriptions
say "refund"; one row in 10,000 mentions "chargeback".
"""

import os
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")
# The old admin's deep pages take longer than a request may: no deadline for this run.
os.environ.setdefault("DB_STATEMENT_TIMEOUT", "0")
os.environ.setdefault("DB_CALL_DEADLINE", "0")
# Hundreds of requests a minute from one founder: the API's rate limits would answer 429.
os.environ.setdefault("API_RATE_LIMIT_PER_TOKEN", "100000/min")
os.environ.setdefault("API_RATE_LIMIT_PER_ADDRESS", "100000/min")

import django

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    override_settings,
    setup_databases,
    teardown_databases,
)

from audit import timeline  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "15"))
WRITES = int(os.environ.get("BENCH_WRITES", "2000"))
SECTIONS = set(os.environ.get("BENCH_SECTIONS", "admin,api,inserts,writes").split(","))
INSERT_ROUNDS = 9
INSERTS_PER_ROUND = 5000
CHUNK = 100_000

FILL_SQL = """
INSERT INTO audit_auditlog (
    action, severity, description, source, user_id, user_email, user_name, user_role,
    ip_address, user_agent, request_path, request_method, request_id, entity_type, entity_id,
    metadata, error_message, error_stack, created_at
)
SELECT
    (ARRAY['LOGIN', 'LEAD_UPDATED', 'LEAD_UPDATED', 'LEAD_CREATED', 'LOGOUT',
           'INVOICE_GENERATED', 'INVOICE_SENT', 'PAYMENT_RECEIVED', 'LEAD_TO_STUDENT_CONVERSION',
           'EMAIL_SENT', 'LOGIN', 'LEAD_UPDATED', 'EMAIL_FAILED', 'API_ERROR', 'LEAD_CREATED',
           'DATA_ACCESSED'])[1 + (g * 7) %% 16],
    CASE WHEN k < 5 THEN 'CRITICAL' WHEN k < 40 THEN 'ERROR' WHEN k < 100 THEN 'WARNING'
         ELSE 'INFO' END,
    CASE WHEN g %% 10000 = 0 THEN 'Chargeback on payment ' || g
    ELSE (ARRAY['Lead ', 'Invoice PB-2026-', 'Payment of EUR 134.00 for invoice ',
                'Student PB-S-'])[1 + g %% 4] || g
        || (ARRAY[' updated by staff', ' created', ' sent to the lead', ' refund requested'])
        [1 + (g / 7) %% 4] END,
    'REQUEST',
    1 + g %% 40,
    'staff' || (1 + g %% 40) || '@planbeta.example',
    'Staff ' || (1 + g %% 40), 'MARKETING', '10.0.0.1', 'Mozilla/5.0', '/api/leads', 'PATCH',
    md5(g::text),
    CASE WHEN g %% 100 = 0 THEN 'Batch' ELSE
    (ARRAY['Lead', 'Lead', 'Lead', 'Invoice', 'Invoice', 'Payment', 'Student', 'User', '', ''])
        [1 + (g * 3) %% 10] END,
    (g %% 5000)::text,
    '{}'::jsonb, '', '',
    %(now)s::timestamptz - (%(rows)s - g) * interval '2 seconds'
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
     LATERAL (SELECT (g * 37) %% 1000 AS k) AS s
"""

NEW_INDEXES = {
    "audit_errors_entity_idx": "CREATE INDEX audit_errors_entity_idx ON audit_auditlog "
    "(entity_type, id DESC) WHERE severity IN ('ERROR', 'CRITICAL')",
    "audit_user_email_idx": "CREATE INDEX audit_user_email_idx ON audit_auditlog "
    "(UPPER(user_email), id DESC)",
    "audit_description_trgm_idx": "CREATE INDEX audit_description_trgm_idx ON audit_auditlog "
    "USING gin (UPPER(description) gin_trgm_ops)",
}


def fill(now) -> None:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        # New rows wait in the trigram index's pending list and are merged at the VACUUM.
        cursor.execute("SET gin_pending_list_limit = '512MB'")
        # Past times written now, in time order: on time rows, not late ones (audit.timeline).
        cursor.execute(timeline.PAUSE_LATE)
        for start in range(1, ROWS + 1, CHUNK):
            stop = min(start + CHUNK - 1, ROWS)
            cursor.execute(FILL_SQL, {"now": now, "rows": ROWS, "start": start, "stop": stop})
            sys.stderr.write(f"\r  filled {stop:,}/{ROWS:,}")
        cursor.execute(timeline.RESUME_LATE)
        sys.stderr.write("\n")
        cursor.execute("RESET gin_pending_list_limit")
        cursor.execute("VACUUM ANALYZE audit_auditlog")
    print(f"filled {ROWS:,} rows and vacuumed in {time.perf_counter() - started:.0f} s")


def median_ms(client: Client, path: str, runs: int = RUNS) -> tuple[float, float]:
    """Median time of the whole request, and median time of its SQL (as the driver saw it)."""
    samples, sql = [], []
    for i in range(runs + 2):
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code == 200, (path, response.status_code)
        if i >= 2:
            samples.append(elapsed)
            sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
    return statistics.median(samples), statistics.median(sql)


def old_admin_urls():
    """The admin list as it was before bounded pages, on a site of its own at /old-admin/."""
    from django.contrib import admin
    from django.urls import include, path

    from audit.models import AuditLog
    from core.admin import ReadOnlyAdmin

    class OldAuditLogAdmin(ReadOnlyAdmin):
        list_display = ["created_at", "severity", "action", "description", "user_email"]
        list_filter = ["severity", "source"]
        search_fields = ["=request_id", "=entity_id", "user_email"]
        show_full_result_count = False
        list_per_page = 50

    site = admin.AdminSite(name="old_admin")
    site.register(AuditLog, OldAuditLogAdmin)
    module = types.ModuleType("bench_old_admin_urls")
    module.urlpatterns = [path("old-admin/", site.urls), path("", include("planbeta.urls"))]
    return module


def without_index(name: str, measure):
    """`measure()` with index `name` dropped, inside a transaction that is rolled back."""
    result = None
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX {name}")  # a name from NEW_INDEXES
            result = measure()
            raise _Rollback
    except _Rollback:
        pass
    return result


class _Rollback(Exception):
    pass


# One audit row as audit_record writes it, INSERTS_PER_ROUND times in one statement's loop on the
# server: the time is the INSERTs' own (index upkeep included), without Python or round trips.
INSERT_LOOP = """
DO $$
BEGIN
  FOR i IN 1..{n} LOOP
    INSERT INTO audit_auditlog (
        action, severity, description, source, user_id, user_email, user_name, user_role,
        ip_address, user_agent, request_path, request_method, request_id, entity_type,
        entity_id, metadata, error_message, error_stack, created_at)
    VALUES (
        'LEAD_CREATED', CASE WHEN i % 25 = 0 THEN 'ERROR' ELSE 'INFO' END,
        'Lead Bench ' || i || ' created by staff', 'REQUEST', 7, 'staff7@planbeta.example',
        'Staff 7', 'MARKETING', '10.0.0.1', 'Mozilla/5.0', '/api/leads', 'POST', md5(i::text),
        'Lead', i::text, '{{"source": "OTHER"}}', '', '', now());
  END LOOP;
END $$
"""


def insert_round(*, drop: tuple[str, ...] = ()) -> float:
    """µs per INSERT of one round, in a transaction that is rolled back (the table stays as it
    was); the indexes named in `drop` (of migration 0010) are dropped inside it first."""
    elapsed = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for name in drop:
                cursor.execute(f"DROP INDEX {name}")
            t0 = time.perf_counter()
            cursor.execute(INSERT_LOOP.format(n=INSERTS_PER_ROUND))
            elapsed = time.perf_counter() - t0
            raise _Rollback
    except _Rollback:
        pass
    return elapsed / INSERTS_PER_ROUND * 1e6


def write_costs() -> list[float]:
    from audit.models import Action
    from audit.services import AuditEntry, audit_record
    from leads.models import Lead

    samples = []
    for i in range(WRITES + 100):
        t0 = time.perf_counter()
        with transaction.atomic():
            lead = Lead.objects.create(name="Bench", whatsapp="+919800000000", source="OTHER")
            audit_record(
                AuditEntry(
                    Action.LEAD_CREATED,
                    description=f"Lead Bench {i} created by staff",
                    entity=lead,
                    metadata={"leadName": "Bench", "source": "OTHER", "status": "NEW"},
                )
            )
        if i >= 100:
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def describe(samples: list[float]) -> str:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(len(s) * q))]  # noqa: E731
    return (
        f"p50 {pick(0.5):6.3f}  p95 {pick(0.95):6.3f}  p99 {pick(0.99):6.3f}  "
        f"max {s[-1]:7.2f}  mean {statistics.mean(s):6.3f}"
    )


def admin_section(client: Client, mid: int) -> None:
    print(f"\nAdmin list at {ROWS:,} rows (ms, medians; SQL: the time of its queries)")
    head = ("old", "old SQL", "new", "new SQL")
    print(f"  {'':<44}" + "".join(f"{h:>9}" for h in head) + f"{'SQL old/new':>13}")
    cases = [
        ("page 1", "", ""),
        ("page 20 (the deepest the new one links)", "?p=20", "?p=20"),
        ("history at the middle of the table", f"?p={ROWS // 100}", f"?id__lt={mid}"),
        ("severity CRITICAL", "?severity__exact=CRITICAL", "?severity__exact=CRITICAL"),
        ("search: a request id", f"?q={_md5(mid)}", f"?q={_md5(mid)}"),
        ("search: an entity (old: its id, any type)", "?q=42", "?q=Invoice%20%2342"),
        ("search: an e-mail", "?q=staff7%40planbeta.example", "?q=staff7%40planbeta.example"),
        ("search: an action code (new only)", None, "?q=PAYMENT_RECEIVED"),
        ("search: a rare word (new only)", None, "?q=chargeback"),
        ("search: a common word (new only)", None, "?q=refund"),
    ]
    with override_settings(ROOT_URLCONF=old_admin_urls()):
        for label, old_query, new_query in cases:
            new_ms, new_sql = median_ms(client, "/admin/audit/auditlog/" + new_query)
            if old_query is None:
                print(f"  {label:<44}{'-':>9}{'-':>9}{new_ms:9.1f}{new_sql:9.1f}")
                continue
            old_ms, old_sql = median_ms(
                client, "/old-admin/audit/auditlog/" + old_query, runs=max(3, RUNS // 3)
            )
            print(
                f"  {label:<44}{old_ms:9.1f}{old_sql:9.1f}{new_ms:9.1f}{new_sql:9.1f}"
                f"{old_sql / new_sql:12.1f}x"
            )


def api_section(client: Client) -> None:
    api = "/api/system/audit-logs"
    print(f"\nAPI q and rare combinations at {ROWS:,} rows (ms, medians of full requests)")
    print(f"  {'':<44}{'no index':>9}{'SQL':>9}{'index':>9}{'SQL':>9}{'SQL ratio':>11}")
    api_cases = [
        ("q=chargeback (1 row in 10,000)", f"{api}?q=chargeback", "audit_description_trgm_idx"),
        ("q=PB-S-12347 (a handful)", f"{api}?q=PB-S-12347", "audit_description_trgm_idx"),
        ("q=refund (a quarter of the rows)", f"{api}?q=refund", "audit_description_trgm_idx"),
        (
            "q=chargeback&type=errors",
            f"{api}?q=chargeback&type=errors",
            "audit_description_trgm_idx",
        ),
        (
            "type=errors&entityType=Batch (rare type)",
            f"{api}?type=errors&entityType=Batch",
            "audit_errors_entity_idx",
        ),
        (
            "type=errors&entityType=Invoice",
            f"{api}?type=errors&entityType=Invoice",
            "audit_errors_entity_idx",
        ),
        (
            "severity=CRITICAL&entityType=Batch",
            f"{api}?severity=CRITICAL&entityType=Batch",
            "audit_errors_entity_idx",
        ),
    ]
    for label, path, index in api_cases:
        slow, slow_sql = without_index(
            index, lambda path=path: median_ms(client, path, runs=max(3, RUNS // 3))
        )
        fast, fast_sql = median_ms(client, path)
        print(
            f"  {label:<44}{slow:9.1f}{slow_sql:9.1f}{fast:9.1f}{fast_sql:9.1f}"
            f"{slow_sql / fast_sql:10.1f}x"
        )


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.utils import timezone

        from accounts.models import Role, User

        now = timezone.now()
        fill(now)
        founder = User.objects.create_user(
            "bench-founder@planbeta.example", "bench-password-123", name="Bench", role=Role.FOUNDER
        )
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(founder)
        mid = ROWS // 2

        if "admin" in SECTIONS:
            admin_section(client, mid)
        if "api" in SECTIONS:
            api_section(client)
        if "inserts" in SECTIONS:
            print(
                f"\nOne audit INSERT on the server ({INSERT_ROUNDS} rounds of "
                f"{INSERTS_PER_ROUND:,} in a PL/pgSQL loop, alternating, each rolled back)"
            )
            insert_round()  # warm-up
            all_three = tuple(NEW_INDEXES)
            with_us, without_us = [], []
            alone: dict[str, list[float]] = {name: [] for name in NEW_INDEXES}
            for _ in range(INSERT_ROUNDS):
                with_us.append(insert_round())
                without_us.append(insert_round(drop=all_three))
                for name in NEW_INDEXES:
                    # Only this index kept: its own cost over the round without any of the three.
                    alone[name].append(insert_round(drop=tuple(n for n in all_three if n != name)))
            a, b = statistics.median(with_us), statistics.median(without_us)
            print(f"  {'without the 3 new indexes':<34} median {b:7.1f} µs per row")
            print(f"  {'with them':<34} median {a:7.1f} µs per row")
            print(
                f"  cost of the 3 indexes: {a - b:+.1f} µs per audit row "
                f"({(a / b - 1) * 100:+.0f} % of the bare INSERT)"
            )
            for name, samples in alone.items():
                print(
                    f"    {name + ' alone':<32} {statistics.median(samples) - b:+7.1f} µs per row"
                )

        if "writes" in SECTIONS:
            print(
                f"\nOne audit write with a business row, own transaction (ms, {WRITES} writes each)"
            )
            with_before = write_costs()
            with connection.cursor() as cursor:
                for name in NEW_INDEXES:
                    cursor.execute(f"DROP INDEX {name}")
            without = write_costs()
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")
                for sql in NEW_INDEXES.values():
                    cursor.execute(sql)
            with_after = write_costs()
            with_all = with_before + with_after
            print(f"  {'without the 3 new indexes':<32} {describe(without)}")
            print(f"  {'with them (before and after)':<32} {describe(with_all)}")
            p50_with, p50_without = statistics.median(with_all), statistics.median(without)
            print(
                f"  p50 difference {p50_with - p50_without:+.3f} ms "
                f"({(p50_with / p50_without - 1) * 100:+.1f} %), "
                f"mean {statistics.mean(with_all) - statistics.mean(without):+.3f} ms"
            )
    finally:
        connections.close_all()
        teardown_databases(old, verbosity=0)


def _md5(n: int) -> str:
    import hashlib

    return hashlib.md5(str(n).encode()).hexdigest()  # noqa: S324 - the fill's request ids


if __name__ == "__main__":
    main()
