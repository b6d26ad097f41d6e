"""Our audit write against django-pghistory, django-simple-history and django-auditlog.

Run (the peers are an optional group, installed only for this bench):
  .venv/bin/pip install -e ".[bench]"
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/audit_peers.py

Creates (and drops) its own database from DATABASE_URL's name with bench.peers.settings (the
project's settings, DEBUG off, plus the peers and the bench app bench/peers). One Lead-like model
per variant, same columns; each write is one transaction that creates one row, as a request
creating a lead does. Every variant records who acted, the way its documentation sets it up:
ours binds the request context as our middleware does (user, IP, user agent, path, request id);
pghistory's context carries user, url and request id (its middleware's job, here entered per
write); simple-history reads the user from the request; auditlog's set_actor the user and IP.
"pghistory, trigger only" is its trigger without any context: it records no who at all, so it
is left out of the ranking; "pghistory + context" is the peer that records comparable
information (who and the request), and the one to compare ours with.
Four references, not ranked: "ours as before" writes audit_record's row with Model.save, as it
did until it built its own INSERT; "one extra round trip" is the same write plus a `SELECT 1`,
the floor of any audit write that is a statement of its own; "our INSERT alone, prebuilt" is the
statement audit_record sends for the same row, its parameters built once beforehand, sent through
Django's cursor: what is left between it and audit_record is the Python work of building each
row; "rendered, no Django" is that statement with its values already rendered into it by psycopg,
sent on the driver's connection: between it and the prebuilt one lie Django's cursor and the
adaptation of twenty parameters, between it and the round trip the server's work.
"Prebuilt, prepared" is the prebuilt statement sent as audit_record sends it (bound on the server,
prepared once per connection). "Rendered, sent with the COMMIT" is the rendered statement and the
COMMIT in one simple query: no round trip of its own and no client work, the floor of any audit
write built apart from the business statement, however it is sent (psycopg's pipeline mode was
tried: it saved at most 0.01 ms, and cost more under load).

Rounds are interleaved (the order rotates each round) so that load from elsewhere on the machine
hits every variant alike. For each round and variant the median of BENCH_N writes is taken; the
cost of a variant is the median over rounds of (its round median - the baseline's round median).
"""

import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MISSING = [
    m
    for m in ("pghistory", "pgtrigger", "simple_history", "auditlog")
    if not importlib.util.find_spec(m)
]
if MISSING:
    sys.exit(
        f"The peer libraries are not installed ({', '.join(MISSING)} missing): "
        'run .venv/bin/pip install -e ".[bench]" first.'
    )

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.peers.settings"

import django  # noqa: E402

django.setup()

import pghistory  # noqa: E402
from auditlog.context import set_actor  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402
from psycopg import ClientCursor  # noqa: E402
from simple_history.models import HistoricalRecords  # noqa: E402

N = int(os.environ.get("BENCH_N", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
ROUND_TRIP = "one extra round trip (SELECT 1)"
BARE_INSERT = "our INSERT alone, prebuilt"
MODEL_SAVE = "ours as before: Model.save"
RENDERED = "our INSERT alone, rendered, no Django"
WITH_COMMIT = "our INSERT rendered, sent with the COMMIT"
BARE_PREPARED = "our INSERT alone, prebuilt, prepared"
REFERENCES = (ROUND_TRIP, BARE_INSERT, RENDERED, MODEL_SAVE, BARE_PREPARED, WITH_COMMIT)
PGHISTORY_NO_WHO = "django-pghistory, trigger only (no who)"
NOTES = (
    "+ms/write: median over rounds of (variant - baseline), each a median of N writes.",
    "stmts: statements one write sends, as Django counts them (COMMIT not included; the",
    "rendered reference sends its INSERT past Django, which does not count it).",
    "idx: indexes on the table(s) its audit or history rows go to (partial ones included).",
    "rows: audit/history rows the variant left (warm-up included); w/ who: of those, rows",
    "naming the user (ours: with IP and request id too; auditlog: with the IP address).",
    "ranking: the variants that record who acted; pghistory + context is the comparable peer.",
    "Medians: a write that merges the trigram index's pending list, and the commits that",
    "concurrent NOTIFYs serialize, are not in these figures (bench/audit_insert_parts.py).",
)
FIELDS = {
    "name": "Asha Bench",
    "whatsapp": "+919800000000",
    "source": "OTHER",
    "email": "asha@example.com",
}


def variants(user, request):
    from audit.context import bind_request, unbind
    from audit.models import Action
    from audit.services import AuditEntry, _build, _plan, audit_record
    from bench.peers.models import (
        AuditlogLead,
        OursLead,
        PghistoryLead,
        PlainLead,
        SimpleHistoryLead,
    )

    def plain():
        with transaction.atomic():
            PlainLead.objects.create(**FIELDS)

    def round_trip():
        with transaction.atomic():
            PlainLead.objects.create(**FIELDS)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")

    def ours():
        token = bind_request(request)
        try:
            with transaction.atomic():
                lead = OursLead.objects.create(**FIELDS)
                audit_record(
                    AuditEntry(
                        Action.LEAD_CREATED,
                        description=f"Lead {lead.name} created",
                        entity=lead,
                        metadata={
                            "leadName": lead.name,
                            "source": lead.source,
                            "status": lead.status,
                        },
                    )
                )
        finally:
            unbind(token)

    def ours_model_save():
        # How audit_record wrote its row until it built its own INSERT: the model's save.
        token = bind_request(request)
        try:
            with transaction.atomic():
                lead = OursLead.objects.create(**FIELDS)
                _build(
                    AuditEntry(
                        Action.LEAD_CREATED,
                        description=f"Lead {lead.name} created (Model.save)",
                        entity=lead,
                        metadata={"leadName": lead.name, "source": lead.source, "status": "NEW"},
                    )
                ).save(force_insert=True)
        finally:
            unbind(token)

    # The statement audit_record sends for the same row as ours (same description, entity and
    # metadata: the trigram index's cost grows with the description), built once: what a
    # separate audit INSERT costs with no Python work at all around it.
    token = bind_request(request)
    try:
        entity = PlainLead.objects.create(**FIELDS)
        row = _build(
            AuditEntry(
                Action.LEAD_CREATED,
                description=f"Lead {entity.name} created",
                entity=entity,
                metadata={"leadName": entity.name, "source": entity.source, "status": "NEW"},
            )
        )
    finally:
        unbind(token)
    plan = _plan(connection)
    sql = plan.head + plan.one_row + plan.returning
    columns = zip(plan.attnames, plan.preps, strict=True)
    params = [prep(row.__dict__[attname], connection) for attname, prep in columns]

    def bare_insert():
        with transaction.atomic():
            PlainLead.objects.create(**FIELDS)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)

    # The prebuilt statement as audit_record sends it (prepared, bound on the server).
    def bare_prepared():
        with transaction.atomic():
            PlainLead.objects.create(**FIELDS)
            with connection.bound_cursor() as cursor:
                cursor.execute(sql, params)
                cursor.fetchall()

    # The same statement with its values already rendered into it by psycopg, sent on the
    # driver's connection: no Django cursor, no adaptation of parameters. What is left is the
    # round trip and the server's work (parse, plan, routing, the row, its index entries).
    rendered = ClientCursor(connection.connection).mogrify(sql, params)

    def rendered_insert():
        with transaction.atomic():
            PlainLead.objects.create(**FIELDS)
            connection.connection.execute(rendered).fetchall()

    # The same rendered statement and the COMMIT in one simple query: the INSERT costs no round
    # trip of its own and no client work. What is left is the server's work for the row.
    with_commit = rendered + "; COMMIT"

    def rendered_with_commit():
        with transaction.atomic():
            PlainLead.objects.create(**FIELDS)
            connection.connection.execute(with_commit)
        # Django's COMMIT then finds no transaction open and sends nothing.

    def pghistory_trigger():
        with transaction.atomic():
            PghistoryLead.objects.create(**FIELDS)

    def pghistory_context():
        context = pghistory.context(user=user.pk, url=request.path, request_id=request.request_id)
        with context, transaction.atomic():
            PghistoryLead.objects.create(**FIELDS)

    def simple_history():
        HistoricalRecords.context.request = request  # what its HistoryRequestMiddleware does
        try:
            with transaction.atomic():
                SimpleHistoryLead.objects.create(**FIELDS)
        finally:
            del HistoricalRecords.context.request

    def auditlog():
        with set_actor(user, remote_addr=request.META["REMOTE_ADDR"]), transaction.atomic():
            AuditlogLead.objects.create(**FIELDS)

    return {
        "plain save (baseline)": plain,
        ROUND_TRIP: round_trip,
        BARE_INSERT: bare_insert,
        RENDERED: rendered_insert,
        BARE_PREPARED: bare_prepared,
        WITH_COMMIT: rendered_with_commit,
        MODEL_SAVE: ours_model_save,
        "ours: audit_record": ours,
        PGHISTORY_NO_WHO: pghistory_trigger,
        "django-pghistory + context (who, url)": pghistory_context,
        "django-simple-history": simple_history,
        "django-auditlog": auditlog,
    }


def round_median(fn):
    samples = []
    for _ in range(N):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def recorded(user):
    """What each variant left behind: how many rows, and whether they name the user."""
    from auditlog.models import LogEntry

    from audit.models import AuditLog
    from bench.peers.models import PghistoryLead, SimpleHistoryLead

    ours = AuditLog.objects.filter(entity_type="OursLead").exclude(
        description__contains="Model.save"
    )
    pgh = PghistoryLead.pgh_event_models["insert"].objects
    return {
        "ours: audit_record": (
            ours.count(),
            ours.filter(user_id=user.pk, ip_address__isnull=False).exclude(request_id="").count(),
        ),
        "django-pghistory + context (who, url)": (
            pgh.filter(pgh_context__isnull=False).count(),
            pgh.filter(pgh_context__metadata__user=user.pk).count(),
        ),
        PGHISTORY_NO_WHO: (
            pgh.filter(pgh_context__isnull=True).count(),
            0,
        ),
        "django-simple-history": (
            SimpleHistoryLead.history.count(),
            SimpleHistoryLead.history.filter(history_user_id=user.pk).count(),
        ),
        "django-auditlog": (
            LogEntry.objects.count(),
            LogEntry.objects.filter(actor_id=user.pk, remote_addr__isnull=False).count(),
        ),
    }


# The tables each variant's audit or history rows go to: every index on them is written too.
TABLES = {
    "ours: audit_record": ["audit_auditlog"],
    BARE_PREPARED: ["audit_auditlog"],
    WITH_COMMIT: ["audit_auditlog"],
    MODEL_SAVE: ["audit_auditlog"],
    BARE_INSERT: ["audit_auditlog"],
    RENDERED: ["audit_auditlog"],
    PGHISTORY_NO_WHO: ["peers_pghistoryleadevent"],
    "django-pghistory + context (who, url)": ["peers_pghistoryleadevent", "pghistory_context"],
    "django-simple-history": ["peers_historicalsimplehistorylead"],
    "django-auditlog": ["auditlog_logentry"],
}


def indexes(tables):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = ANY(%s::regclass[])", [list(tables)]
        )
        return cursor.fetchone()[0]


def main():
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user(
            email="founder@example.com", name="Founder Bench", role="FOUNDER"
        )
        request = RequestFactory().post(
            "/api/leads",
            HTTP_USER_AGENT="bench/1.0",
            HTTP_X_REQUEST_ID="bench-request-1",
            REMOTE_ADDR="203.0.113.7",
        )
        request.user = user
        request.request_id = "bench-request-1"
        with connection.cursor() as cursor:
            # Every variant commits once per write; waiting for that commit's WAL flush on this
            # shared disk costs milliseconds and varies more than the differences measured here.
            cursor.execute("SET synchronous_commit TO off")
        table = variants(user, request)
        if os.environ.get("BENCH_SHOW_SQL"):
            for label, fn in table.items():
                with CaptureQueriesContext(connection) as queries:
                    fn()
                print(label, *(q["sql"][:160] for q in queries.captured_queries), sep="\n    ")
        statements = {}
        for label, fn in table.items():
            fn()  # warm up: content types, prepared adapters, the connection
            with CaptureQueriesContext(connection) as queries:
                fn()
            statements[label] = len(queries.captured_queries)
        names = list(table)
        medians = {label: [] for label in names}
        for r in range(ROUNDS):
            order = names[r % len(names) :] + names[: r % len(names)]
            for label in order:
                medians[label].append(round_median(table[label]))
        base = medians[names[0]]
        cost = {
            label: statistics.median(m - b for m, b in zip(medians[label], base, strict=True))
            for label in names[1:]
        }
        ours = cost["ours: audit_record"]
        rows = recorded(user)

        print(f"PostgreSQL {connection.pg_version}; {ROUNDS} interleaved rounds x {N} writes each;")
        print(
            "one transaction per write creating one Lead-like row; DEBUG, synchronous_commit off."
        )
        baseline = statistics.median(base)
        print(f"baseline, plain save without audit: {baseline:.3f} ms per write")
        print()
        header = ("variant", "+ms/write", "x ours", "stmts", "idx", "rows", "w/ who")
        line = "  {:<40} {:>9} {:>7} {:>5} {:>3} {:>6} {:>6}"
        print(line.format(*header))
        for label in sorted(cost, key=cost.__getitem__):
            written, with_who = rows.get(label, ("-", "-"))
            ratio = f"{cost[label] / ours:.2f}" if ours > 0 else "-"
            idx = indexes(TABLES[label]) if label in TABLES else "-"
            cells = (f"{cost[label]:.3f}", ratio, statements[label], idx, written, with_who)
            print(line.format(label, *cells))
        print()
        for note in NOTES:
            print(note)
        ranked = [
            label
            for label in sorted(cost, key=cost.__getitem__)
            if label not in REFERENCES and label != PGHISTORY_NO_WHO
        ]
        print("ranking, cheapest first: " + " < ".join(ranked))
    finally:
        for alias in connections:
            connections[alias].close()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
