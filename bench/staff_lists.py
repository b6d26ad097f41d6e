"""Server time of the staff lead list (numbered pages, sorts, the count in the page's query) at
1 thousand, 10 thousand and 100 thousand leads.

Run:
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/planbeta_bench \
    .venv/bin/python bench/staff_lists.py

Creates (and drops) its own test database from DATABASE_URL's name, fills leads_lead with
generate_series, ANALYZEs it, then times full requests through Django (middleware, session,
view, template) for the first page (newest first), a sort by name, the deepest page the list
serves (page 200: OFFSET 9,950), a status filter sorted by follow-up date and a search. Then,
at the largest size, the page's one query (rows and COUNT(*) OVER ()) beside the same page
without the count and a separate COUNT(*), to show what counting in the same query costs.
Median of BENCH_RUNS runs (default 20) after a warm-up. BENCH_ROWS overrides the sizes.

The lead list is the heaviest of the four lists (each row carries the correlated subqueries that
find a student holding its WhatsApp number); invoices, students and users are smaller tables with
simpler rows. The school has a few hundred leads a month: 100,000 is decades of them.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planbeta.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count, Window  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
SIZES = [int(n) for n in os.environ.get("BENCH_ROWS", "1000,10000,100000").split(",")]

FILL_SQL = """
INSERT INTO leads_lead (
    name, whatsapp, email, phone, source, status, quality, interested_level, notes,
    follow_up_date, converted, created_at, updated_at
)
SELECT
    (ARRAY['Anu','Bala','Chitra','Dev','Esha','Fathima','Joel','Meera','Sneha','Vishnu'])
        [1 + g %% 10] || ' ' || md5(g::text),
    '+9198' || lpad((g %% 100000000)::text, 8, '0'),
    'lead' || g || '@example.com',
    '',
    (ARRAY['META_ADS','INSTAGRAM','GOOGLE','ORGANIC','REFERRAL','OTHER'])[1 + g %% 6],
    (ARRAY['NEW','CONTACTED','INTERESTED','TRIAL_SCHEDULED','TRIAL_ATTENDED','LOST'])[1 + g %% 6],
    (ARRAY['HOT','WARM','COLD',''])[1 + g %% 4],
    (ARRAY['A1','A2','B1','B2',''])[1 + g %% 5],
    '',
    CASE WHEN g %% 3 = 0 THEN NULL ELSE current_date + (g %% 60 - 30) END,
    false,
    now() - (%(total)s - g) * interval '1 minute',
    now()
FROM generate_series(1, %(total)s) AS g
"""

REQUESTS = {
    "first page, newest first": "/leads/",
    "sorted by name": "/leads/?sort=name",
    "deepest page (200, by name)": "/leads/?sort=name&page=200",
    "status filter, by follow-up": "/leads/?status=NEW&sort=follow_up",
    "search 'meera'": "/leads/?q=meera",
    # A third of the leads carry a follow-up date in the last 30 days: the worst case of a
    # queue nobody works through.
    "home (work queue)": "/",
}


def fill(total: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE leads_lead RESTART IDENTITY CASCADE")
        cursor.execute(FILL_SQL, {"total": total})
        cursor.execute("ANALYZE leads_lead")


def median_ms(call, runs: int = RUNS) -> float:
    samples = []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        call()
        if i >= 3:  # warm-up
            samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def page_request(client: Client, path: str):
    def call():
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    return call


def query_comparison() -> dict[str, float]:
    """The page's one query against the two a separate count would take, at the same page."""
    from core.listing import PAGE_SIZE
    from leads.selectors import lead_list

    qs = lead_list(with_number_holder=False).order_by("name", "pk")
    page = slice(0, PAGE_SIZE)
    with_count = qs.annotate(total=Window(Count("pk")))
    return {
        "page + COUNT(*) OVER () (one query)": median_ms(lambda: list(with_count[page])),
        "page alone": median_ms(lambda: list(qs[page])),
        "COUNT(*) alone": median_ms(lambda: lead_list(with_number_holder=False).count()),
    }


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from accounts.models import Role, User

        staff = User.objects.create_user(
            "bench-staff@planbeta.example", "bench-password-123", name="Bench", role=Role.MARKETING
        )
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(staff)
        results = {}
        for size in SIZES:
            fill(size)
            results[size] = {
                label: median_ms(page_request(client, path)) for label, path in REQUESTS.items()
            }
            print(f"{size:,} leads: done", file=sys.stderr)
        comparison = query_comparison()

        print(f"\nLead list, full request through Django ({RUNS} runs each, median)")
        print(f"  {'':<32}" + "".join(f"{size:>12,}" for size in SIZES))
        for label in REQUESTS:
            row = "".join(f"{results[size][label]:>9.1f} ms" for size in SIZES)
            print(f"  {label:<32}{row}")
        print(f"\nThe page's query alone at {SIZES[-1]:,} leads (sorted by name, first page)")
        base = comparison["page alone"]
        for label, ms in comparison.items():
            print(f"  {label:<40} {ms:8.2f} ms  ({ms / base:4.1f}x the page alone)")
        separate = comparison["page alone"] + comparison["COUNT(*) alone"]
        print(f"  {'page and a separate COUNT(*) (two)':<40} {separate:8.2f} ms")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
