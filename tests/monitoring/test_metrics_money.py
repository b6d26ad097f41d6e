"""/metrics' payments and students: exactly the rows in the tables at every scrape, while the
roll-up (monitoring.money_counts) moves its marks up under new rows and concurrent writers."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, connections, transaction
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from invoices.models import Invoice
from monitoring.models import MoneyCount, MoneyCountMark
from monitoring.money_counts import counts_above, money_counts
from monitoring.snapshots import ended_before
from payments.models import Payment, Student
from payments.services import payment_record
from tests.money_factories import make_converted_invoice

TOKEN = "metrics-money-test-token-0123456789"
MONEY_SERIES = ("planbeta_payments_total", "planbeta_payment_amount_total")


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scraped_money() -> dict[str, dict[str, float]]:
    """{series: {currency: value}} of the money series of one scrape."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    wanted = (*MONEY_SERIES, "planbeta_conversions_total")
    found: dict[str, dict[str, float]] = {name: {} for name in wanted}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name in wanted:
                found[sample.name][sample.labels["currency"]] = sample.value
    return found


def money_in_db() -> dict[str, dict[str, float]]:
    """The same figures counted over the whole tables, as /metrics counted them before."""
    payments = Payment.objects.values_list("currency").annotate(n=Count("*"), s=Sum("amount"))
    students = Student.objects.values_list("currency").annotate(n=Count("*"))
    return {
        "planbeta_payments_total": {c: float(n) for c, n, _ in payments.order_by()},
        "planbeta_payment_amount_total": {c: float(s) for c, _, s in payments.order_by()},
        "planbeta_conversions_total": {c: float(n) for c, n in students.order_by()},
    }


def instalment(invoice: Invoice, amount: str, actor) -> None:
    answer = payment_record(
        invoice=invoice, amount=Decimal(amount), idempotency_key=f"k-{uuid.uuid4()}", actor=actor
    )
    assert answer.status_code == 201, answer.body


def wait_for_older_transactions_to_end() -> None:
    # The marks move only once every transaction older than the noted xmax has ended, in the
    # whole cluster: another suite on the same server can hold that for a moment. Real time.
    mark = MoneyCountMark.objects.filter(pk=1).first()
    if connection.vendor != "postgresql" or mark is None or mark.candidate_xmax is None:
        return
    for _ in range(1200):
        if ended_before(mark.candidate_xmax):
            return
        time.sleep(0.05)
    pytest.fail("a transaction older than the candidate marks ran for a minute")


@pytest.mark.django_db(transaction=True)
def test_payment_and_student_counts_stay_exact_and_never_drop_while_the_marks_move_up(
    founder, settings
):
    settings.MONITORING_AUDIT_ROLLUP_SECONDS = 3600
    settings.MONITORING_AUDIT_SETTLE_SECONDS = 60
    seen: list[dict] = []
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for hour in range(4):
            eur = make_converted_invoice(actor=founder, paid="50.00", amounts=("134.00",))
            make_converted_invoice(actor=founder, paid="5000.50", currency="INR",
                                   amounts=("12000.00",))  # fmt: skip
            seen.append(scraped_money())
            assert seen[-1] == money_in_db()
            clock.shift(timedelta(seconds=90))  # the candidates settle
            instalment(eur, f"{10 + hour}.25", founder)
            seen.append(scraped_money())
            assert seen[-1] == money_in_db()
            clock.shift(timedelta(hours=1))
            wait_for_older_transactions_to_end()
    mark = MoneyCountMark.objects.get()
    # Moved at the first settle and then hourly, the last time to the rows of the third hour.
    assert mark.payments_to_id == Payment.objects.order_by("id")[2 * 3 + 1].id
    assert mark.students_to_id == Student.objects.order_by("id")[2 * 2 + 1].id
    assert seen[-1] == money_in_db()
    assert seen[-1]["planbeta_payments_total"] == {"EUR": 8.0, "INR": 4.0}
    assert seen[-1]["planbeta_payment_amount_total"] == {"EUR": 247.0, "INR": 20002.0}
    assert seen[-1]["planbeta_conversions_total"] == {"EUR": 4.0, "INR": 4.0}
    # What is rolled up is part of that: the rest was counted live above the marks.
    rolled = {row.currency: row.payments for row in MoneyCount.objects.all()}
    assert 0 < sum(rolled.values()) < Payment.objects.count()
    for earlier, later in itertools.pairwise(seen):
        for series, per_currency in earlier.items():
            assert all(later[series].get(c, 0) >= v for c, v in per_currency.items())


@pytest.mark.django_db
def test_a_currency_without_payments_or_students_has_no_series(founder):
    make_converted_invoice(actor=founder, paid="50.00")

    money = scraped_money()

    assert money == {
        "planbeta_payments_total": {"EUR": 1.0},
        "planbeta_payment_amount_total": {"EUR": 50.0},
        "planbeta_conversions_total": {"EUR": 1.0},
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "audit"])
def test_a_payment_still_uncommitted_below_the_candidate_holds_the_marks_until_it_commits(
    founder, settings
):
    settings.MONITORING_AUDIT_ROLLUP_SECONDS = 0
    settings.MONITORING_AUDIT_SETTLE_SECONDS = 0
    slow_invoice = make_converted_invoice(actor=founder, paid="50.00")
    other = make_converted_invoice(actor=founder, paid="20.00")
    with transaction.atomic(using="audit"):
        # Draws its id first and commits last, as a long money transaction does.
        slow = Payment.objects.using("audit").create(
            student=slow_invoice.lead.student, invoice=slow_invoice, amount=Decimal("7.00"),
            currency="EUR", paid_on=timezone.localdate(), idempotency_key=f"k-{uuid.uuid4()}",
        )  # fmt: skip
        instalment(other, "30.00", founder)
        newest = Payment.objects.latest("id").id
        for _ in range(4):  # draw the candidate above the open row, note xmax, try to advance
            assert scraped_money() == money_in_db()
        mark = MoneyCountMark.objects.get()
        assert (mark.candidate_payment_id, mark.payments_to_id) == (newest, 0)
        assert slow.id < newest
        assert scraped_money()["planbeta_payment_amount_total"] == {"EUR": 100.0}
    wait_for_older_transactions_to_end()

    money = scraped_money()

    assert money == money_in_db()
    assert money["planbeta_payment_amount_total"] == {"EUR": 107.0}
    assert money["planbeta_payments_total"] == {"EUR": 4.0}
    assert MoneyCountMark.objects.get().payments_to_id == newest


def _snapshot_agrees() -> tuple[bool, int]:
    """In one REPEATABLE READ snapshot: do the rolled-up totals plus the live rows above the marks
    equal the whole tables counted? And how many payments are there."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT payments_to_id, students_to_id FROM monitoring_moneycountmark")
        marks = cursor.fetchone() or (0, 0)
        read = counts_above(cursor, marks)
        assert read.marks == marks
        scraped = {c: (m.payments, m.amount, m.students) for c, m in read.counts.items()}
        cursor.execute(
            "SELECT currency, SUM(p), SUM(a), SUM(s) FROM ("
            " SELECT currency, COUNT(*) AS p, SUM(amount) AS a, 0 AS s FROM payments_payment"
            " GROUP BY currency UNION ALL"
            " SELECT currency, 0, 0, COUNT(*) FROM payments_student GROUP BY currency"
            ") AS t GROUP BY currency"
        )
        exact = {c: (int(p), Decimal(a), int(s)) for c, p, a, s in cursor.fetchall()}
    return scraped == exact, sum(p for p, _, _ in exact.values())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_counts_stay_exact_in_every_snapshot_while_writers_and_roll_ups_run_at_once(
    founder, settings
):
    settings.MONITORING_AUDIT_ROLLUP_SECONDS = 0
    settings.MONITORING_AUDIT_SETTLE_SECONDS = 0
    invoices = [
        make_converted_invoice(actor=founder, paid="1.00", amounts=("500.00",)) for _ in range(3)
    ]
    per_writer = 8
    done = threading.Event()
    errors: list[BaseException] = []
    checks: list[bool] = []

    def writer(invoice: Invoice) -> None:
        try:
            for i in range(per_writer):
                # Held open a moment after its payment drew its id: rows of the writers then
                # commit out of id order, which is what the settle is there for.
                with transaction.atomic():
                    instalment(invoice, f"{1 + i % 3}.10", founder)
                    time.sleep(random.uniform(0, 0.15))
        except BaseException as exc:  # the test asserts on it
            errors.append(exc)
        finally:
            connections.close_all()

    def scraper() -> None:
        try:
            while not done.is_set():
                money_counts()  # a scrape, which takes the roll-up's next step when one is due
                checks.append(_snapshot_agrees()[0])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    writers = [threading.Thread(target=writer, args=(inv,)) for inv in invoices]
    scrapers = [threading.Thread(target=scraper) for _ in range(2)]
    for thread in writers + scrapers:
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    for thread in scrapers:
        thread.join(120)
    assert not any(t.is_alive() for t in writers + scrapers)
    assert errors == []
    wait_for_older_transactions_to_end()
    for _ in range(4):
        money_counts()
        wait_for_older_transactions_to_end()

    assert checks and all(checks)
    assert _snapshot_agrees() == (True, 3 + 3 * per_writer)
    assert scraped_money() == money_in_db()
    # Rolled up to the last row in the end; how often on the way depends on the interleaving.
    assert MoneyCountMark.objects.get().payments_to_id == Payment.objects.latest("id").id


@pytest.mark.django_db
def test_the_money_counts_take_two_queries_per_scrape_once_the_candidates_are_drawn(
    founder, django_assert_num_queries
):
    make_converted_invoice(actor=founder, paid="50.00")
    money_counts()  # draws the candidates
    money_counts()  # on SQLite, whose writers are serialised, moves the marks at once

    with django_assert_num_queries(2):  # the mark, the counts
        counts = money_counts()

    assert {c: (m.payments, m.amount, m.students) for c, m in counts.items()} == {
        "EUR": (1, Decimal("50.00"), 1)
    }


@pytest.mark.django_db(transaction=True)
def test_a_count_read_with_marks_another_worker_has_moved_since_says_so_and_is_read_again(
    founder, settings
):
    settings.MONITORING_AUDIT_ROLLUP_SECONDS = 0
    settings.MONITORING_AUDIT_SETTLE_SECONDS = 0
    make_converted_invoice(actor=founder, paid="50.00")
    make_converted_invoice(actor=founder, paid="20.00")
    for _ in range(4):
        money_counts()
        wait_for_older_transactions_to_end()
    mark = MoneyCountMark.objects.get()
    assert (mark.payments_to_id, mark.students_to_id) != (0, 0)

    with connection.cursor() as cursor:
        stale = counts_above(cursor, (0, 0))  # as read by a scrape just before the move
        fresh = counts_above(cursor, stale.marks)

    assert stale.marks == (mark.payments_to_id, mark.students_to_id)
    assert stale.counts["EUR"].payments == 4  # rolled up and counted live: twice
    assert fresh.marks == stale.marks
    assert fresh.counts["EUR"] == money_counts()["EUR"]
    assert (fresh.counts["EUR"].payments, fresh.counts["EUR"].amount) == (2, Decimal("70.00"))
