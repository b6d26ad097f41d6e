"""What the audit INSERT itself costs, part by part, on PostgreSQL.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_insert_parts.py

Creates (and drops) its own test database from DATABASE_URL's name and migrates it (the trail
partitioned by month and class), fills BENCH_FILL rows (default 50,000) as
tests/audit/test_index_plans.py does, and copies them into plain tables that differ from the
trail in one thing each (partitioning, the trigram index's fastupdate, the trigram index, the
secondary indexes, the NOTIFY trigger). A second database, copied from the first, gets 62 more
months (about 300 leaves, what some years of retention hold).

Part 1 (one connection, synchronous_commit off as in bench/audit_peers.py, so that the WAL flush
of this shared disk does not drown the differences): each write is one committed transaction
that inserts a business row and then the statement `audit_record` sends for a Lead's creation,
already rendered (psycopg's own rendering of the parameters, as Django's cursor would send it),
so no Python work is timed but the round trip. Like Django's connection, psycopg renders the
statement on the client and never prepares it. Rounds are interleaved; each variant's cost is
the median over rounds of (its round median - the business-only round median).

Part 2 (BENCH_THREADS connections at once, synchronous_commit on as in production): the same
write for BENCH_SECONDS per phase, with the NOTIFY trigger of audit.notify and without, twice.
PostgreSQL serializes the commits of the transactions that sent a NOTIFY (a lock on the
notification queue, held until the commit record is flushed), so concurrent audited commits
cannot share one WAL flush.

Part 3: the trigram index's pending list (fastupdate): how many rows fill the default
gin_pending_list_limit, and how long the writer that overflows it spends merging it. Needs the
pgstattuple extension (contrib); skipped without it.
"""

import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-key-" + "x" * 40)

import django

django.setup()

import psycopg  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402
from psycopg import ClientCursor, sql  # noqa: E402

N = int(os.environ.get("BENCH_N", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
FILL = int(os.environ.get("BENCH_FILL", "50000"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
EXTRA_MONTHS = 62
TRAIL = "audit_auditlog"
BUSINESS = "INSERT INTO bench_business (name) VALUES ('Asha Bench') RETURNING id"
# Plain copies of the trail: (table, what differs, SQL run on the copy).
PLAIN = {
    "bench_plain": ("plain table, same indexes and trigger", []),
    "bench_plain_slow_gin": (
        "  ... trigram index with fastupdate off",
        ["ALTER INDEX {trgm} SET (fastupdate = off)"],
    ),
    "bench_plain_no_trgm": ("  ... without the trigram index", ["DROP INDEX {trgm}"]),
    "bench_plain_pk_only": ("  ... primary key only (no secondary index)", ["DROP SECONDARY"]),
    "bench_plain_no_notify": ("  ... without the NOTIFY trigger", ["DROP TRIGGER"]),
}


def audit_statement():
    """The INSERT audit_record sends for a Lead's creation in a request, rendered by psycopg."""
    from django.test import RequestFactory

    from accounts.models import User
    from audit.context import bind_request, unbind
    from audit.models import Action
    from audit.services import AuditEntry, _build, _plan

    user = User(pk=1, email="founder@example.com", name="Founder Bench", role="FOUNDER")
    request = RequestFactory().post(
        "/api/leads", HTTP_USER_AGENT="bench/1.0", REMOTE_ADDR="203.0.113.7"
    )
    request.user = user
    token = bind_request(request)
    try:
        row = _build(
            AuditEntry(
                Action.LEAD_CREATED,
                description="Lead Asha Bench created",
                entity_type="Lead",
                entity_id=17,
                metadata={"leadName": "Asha Bench", "source": "OTHER", "status": "NEW"},
            )
        )
    finally:
        unbind(token)
    plan = _plan(connection)
    columns = zip(plan.attnames, plan.preps, strict=True)
    params = [prep(row.__dict__[attname], connection) for attname, prep in columns]
    rendered = ClientCursor(connection.connection).mogrify(
        plan.head + plan.one_row + plan.returning, params
    )
    # Each row its own time, as audit_record gives it (the rendered one would route every row
    # by the same instant).
    stamp = f"'{row.created_at}'::timestamptz"
    if stamp not in rendered:
        sys.exit(f"created_at is not rendered as {stamp}: {rendered}")
    return rendered.replace(stamp, "now()"), (plan.head + plan.one_row + plan.returning, params)


def make_plain_copies(cur):
    for table, (_, changes) in PLAIN.items():
        cur.execute(f"CREATE TABLE {table} (LIKE {TRAIL} INCLUDING ALL)")
        cur.execute(f"INSERT INTO {table} SELECT * FROM {TRAIL}")
        cur.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table} FOR EACH STATEMENT"
            " EXECUTE FUNCTION audit_auditlog_notify()"
        )
        cur.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid), x.indisprimary FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            [table],
        )
        indexes = cur.fetchall()
        trgm = next(name for name, definition, _ in indexes if "gin_trgm_ops" in definition)
        for change in changes:
            if change == "DROP SECONDARY":
                for name, _, primary in indexes:
                    if not primary:
                        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
            elif change == "DROP TRIGGER":
                cur.execute(f"DROP TRIGGER {table}_notify ON {table}")
            else:
                cur.execute(change.format(trgm=f'"{trgm}"'))
        cur.execute(f"VACUUM ANALYZE {table}")


def leaves(conn):
    return conn.execute(
        f"SELECT count(*) FROM pg_partition_tree('{TRAIL}') WHERE isleaf"
    ).fetchone()[0]


def part_one(conn, wide, prepared, statement, parametrized):
    def write_prepared():
        query, params = parametrized
        with prepared.transaction():
            prepared.execute(BUSINESS).fetchall()
            prepared.execute(query, params, prepare=True).fetchall()

    def write(c, target):
        insert = None if target is None else statement.replace(f'"{TRAIL}"', target, 1)

        def fn():
            with c.transaction():
                c.execute(BUSINESS).fetchall()
                if target == "SELECT 1":
                    c.execute("SELECT 1").fetchall()
                elif insert is not None:
                    c.execute(insert).fetchall()

        return fn

    table = {
        "business row only (baseline)": write(conn, None),
        "+ one round trip (SELECT 1)": write(conn, "SELECT 1"),
        f"+ audit INSERT, the trail ({leaves(conn)} leaves)": write(conn, f'"{TRAIL}"'),
        f"+ audit INSERT, the trail ({leaves(wide)} leaves)": write(wide, f'"{TRAIL}"'),
    }
    table["+ audit INSERT, the trail, as a prepared statement"] = write_prepared
    for name, (label, _) in PLAIN.items():
        table[f"+ audit INSERT, {label}"] = write(conn, name)
    names = list(table)
    for fn in table.values():
        for _ in range(20):
            fn()
    medians = {label: [] for label in names}
    for r in range(ROUNDS):
        for label in names[r % len(names) :] + names[: r % len(names)]:
            samples = []
            for _ in range(N):
                t0 = time.perf_counter()
                table[label]()
                samples.append(time.perf_counter() - t0)
            medians[label].append(statistics.median(samples) * 1000)
    base = medians[names[0]]
    print(f"Part 1: {ROUNDS} interleaved rounds x {N} committed writes, synchronous_commit off;")
    print(f"business row only: {statistics.median(base):.3f} ms per write; + ms over it:")
    cost = {}
    for label in names[1:]:
        cost[label] = statistics.median(m - b for m, b in zip(medians[label], base, strict=True))
        print(f"  {label:<58} {cost[label]:+.3f}")
    return cost


def part_two(connect, statement):
    def worker(stop, counts, index):
        with connect() as c:
            c.execute("SET synchronous_commit TO on")
            while not stop.is_set():
                with c.transaction():
                    c.execute(BUSINESS).fetchall()
                    c.execute(statement).fetchall()
                counts[index] += 1

    def phase(owner, enabled):
        switch = "ENABLE" if enabled else "DISABLE"
        owner.execute(f"ALTER TABLE {TRAIL} {switch} TRIGGER audit_auditlog_notify")
        stop, counts = threading.Event(), [0] * THREADS
        threads = [threading.Thread(target=worker, args=(stop, counts, i)) for i in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join()
        return sum(counts) / SECONDS

    with connect() as owner:
        runs = {True: [], False: []}
        for _ in range(2):
            for enabled in (True, False):
                runs[enabled].append(phase(owner, enabled))
        owner.execute(f"ALTER TABLE {TRAIL} ENABLE TRIGGER audit_auditlog_notify")
    with_notify, without = statistics.median(runs[True]), statistics.median(runs[False])
    print(
        f"Part 2: {THREADS} connections writing at once, synchronous_commit on, "
        f"{SECONDS:g} s per phase, each phase twice:"
    )
    print(f"  with the NOTIFY trigger     {with_notify:8.0f} writes/s  {runs[True]}")
    print(f"  without it                  {without:8.0f} writes/s  {runs[False]}")
    print(f"  ratio without / with        {without / with_notify:8.2f}")


def part_three(conn, statement):
    if not conn.execute(
        "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgstattuple')"
    ).fetchone()[0]:
        print("Part 3: skipped (no pgstattuple extension on this server)")
        return
    conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    (index,) = conn.execute(
        "SELECT p.relid::regclass::text FROM pg_partition_tree('audit_description_trgm_idx') p"
        " JOIN pg_index x ON x.indexrelid = p.relid"
        " WHERE p.isleaf AND x.indrelid = (SELECT tableoid FROM audit_auditlog"
        "  WHERE action = 'LEAD_CREATED' ORDER BY id DESC LIMIT 1)"
    ).fetchone()
    conn.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
    probe = 1000
    for i in range(probe):
        conn.execute(statement.replace("Asha Bench created", f"Asha Bench {i} created"))
    (pages,) = conn.execute(
        "SELECT pending_pages FROM pgstatginindex(%s::regclass)", [index]
    ).fetchone()
    (limit_kb,) = conn.execute(
        "SELECT setting::int FROM pg_settings WHERE name = 'gin_pending_list_limit'"
    ).fetchone()
    limit_pages = limit_kb * 1024 // 8192
    rows = int(limit_pages / max(pages, 1) * probe)
    # Fill the list to just under its limit with rows like these, then time the merge.
    conn.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
    fill = int(rows * 0.95)
    conn.execute(
        "INSERT INTO audit_auditlog (action, severity, description, source, user_id,"
        " user_email, user_name, user_role, ip_address, user_agent, request_path,"
        " request_method, request_id, entity_type, entity_id, metadata, error_message,"
        " error_stack, created_at)"
        " SELECT 'LEAD_CREATED', 'INFO', 'Lead Asha Bench ' || g || ' created', 'REQUEST', 1,"
        " 'founder@example.com', 'Founder Bench', 'FOUNDER', '203.0.113.7', 'bench/1.0',"
        " '/api/leads', 'POST', md5(g::text), 'Lead', g::text, '{}', '', '', now()"
        " FROM generate_series(1, %s) g",
        [fill],
    )
    t0 = time.perf_counter()
    conn.execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
    merge = (time.perf_counter() - t0) * 1000
    print(
        f"Part 3: the trigram index's pending list ({limit_kb} kB) holds about {rows} rows like "
        f"these ({pages} pages per {probe});"
    )
    print(
        f"  merging a full list took {merge:.0f} ms: the writer whose row overflows it pays that "
        "(or VACUUM, when autovacuum comes first)"
    )


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    settings = connection.settings_dict
    name = settings["NAME"]
    wide_name = f"{name}_wide"

    def connect(db):
        # As Django's connection sends statements: rendered by the client, never prepared.
        return psycopg.connect(
            url(db), autocommit=True, cursor_factory=ClientCursor, prepare_threshold=None
        )

    def url(db):
        host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
        password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
        return f"postgresql://{settings['USER']}{password}@{host}:{port}/{db}"

    try:
        statement, parametrized = audit_statement()
        with connect(name) as c, c.cursor() as cur:
            cur.execute("SET statement_timeout = 0")
            cur.execute("CREATE TABLE bench_business (id bigserial PRIMARY KEY, name text)")
            if FILL:
                from tests.audit.test_index_plans import FILL as FILL_SQL

                cur.execute("SET gin_pending_list_limit = '256MB'")
                cur.execute(FILL_SQL, {"now": timezone.now(), "rows": FILL})
                cur.execute("RESET gin_pending_list_limit")
            cur.execute(f"VACUUM ANALYZE {TRAIL}")
            make_plain_copies(cur)
        for alias in connections:
            connections[alias].close()
        with psycopg.connect(url("postgres"), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{wide_name}"')
            c.execute(f'CREATE DATABASE "{wide_name}" TEMPLATE "{name}"')
        with connect(wide_name) as wide:
            for i in range(EXTRA_MONTHS):
                wide.execute(
                    "SELECT audit_create_month(make_date(2000 + %s / 12, 1 + %s %% 12, 1))",
                    [i, i],
                )
            wide.execute("VACUUM ANALYZE")
            wide.execute("SET synchronous_commit TO off")
            # The same statement with its values as parameters, prepared once by this session.
            prepared = psycopg.connect(url(name), autocommit=True, prepare_threshold=0)
            with connect(name) as conn, prepared:
                conn.execute("SET synchronous_commit TO off")
                prepared.execute("SET synchronous_commit TO off")
                print(f"PostgreSQL {conn.info.server_version}; trail filled with {FILL} rows.")
                part_one(conn, wide, prepared, statement, parametrized)
        print()
        part_two(lambda: connect(name), statement)
        print()
        with connect(name) as conn:
            part_three(conn, statement)
    finally:
        for alias in connections:
            connections[alias].close()
        with psycopg.connect(url("postgres"), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{wide_name}"')
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
