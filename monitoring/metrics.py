"""`GET /metrics` for Prometheus: business and pipeline figures read from the database at scrape
time, and request latency histograms by route.

Values that live in the database (audit rows, payments, conversions, the outbox, alert states)
are read by one Collector when Prometheus scrapes, so every gunicorn worker answers the same
numbers and nothing resets when a worker restarts. Request latency only exists in the process
that served the request: under gunicorn those histograms use prometheus_client's multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`, set up by deploy/gunicorn.conf.py), so one scrape sums every
worker's, the dead ones' included.

`planbeta_audit_events_total` must equal the exact row count at scrape time without a GROUP BY
over the whole trail. `AuditCount` holds the totals of the rows up to a mark id; a scrape adds
the rows above the mark, counted live, in the same statement (one snapshot). About once an hour
(MONITORING_AUDIT_ROLLUP_SECONDS) a scrape moves the mark up. By id, not by time: a spooled row
is written later with its original `created_at`, so a "closed hour" can still grow, while its id
is new. An id is drawn at INSERT and becomes visible at COMMIT, so a row of a longer transaction
can appear below ids already visible: the mark moves only to a candidate id whose every writer
has ended. On PostgreSQL that is known from transaction ids: the candidate (the highest visible
id) is drawn, MONITORING_AUDIT_SETTLE_SECONDS later the next transaction id is noted (by then any
INSERT that drew an id at or below the candidate has its transaction id), and the mark moves once
the oldest running transaction is younger than that. On SQLite writers are serialised, so every
id at or below the highest visible one is settled already.

The payments and students are counted the same way (monitoring.money_counts).
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.models import AlertState, AlertStatus, Notification, NotificationStatus
from audit import timeline
from audit.models import AuditLog
from core.database import database_unavailable, unavailable_reason
from monitoring import snapshots
from monitoring.checks import (
    DEGRADED,
    HEALTHY,
    MONEY,
    SITE,
    UNHEALTHY,
    health_report,
    heartbeat_age_seconds,
)
from monitoring.models import AuditCount, AuditCountMark
from monitoring.money_counts import money_counts

logger = logging.getLogger(__name__)

HEALTH_STATUSES = (HEALTHY, DEGRADED, UNHEALTHY)
# Outbox rows that still have to go out; the age of the oldest one is the backlog.
PENDING_STATUSES = (NotificationStatus.PENDING, NotificationStatus.SENDING)

# --- request latency ----------------------------------------------------------------------------

# Not the default registry: /metrics builds its own (below), and the default one would also
# register process collectors that multiprocess mode cannot serve.
_process_registry = CollectorRegistry(auto_describe=True)
REQUEST_LATENCY = Histogram(
    "planbeta_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by URL route (the pattern).",
    ["route", "method", "status"],
    # Pages and API calls take milliseconds; a stalled database answers after about 6 s.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=_process_registry,
)
UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestLatencyMiddleware:
    """Observes every response's duration under its route pattern, never the raw path.

    A raw path (`/api/leads/4711`) would make one time series per id; the resolver's pattern
    (`api/leads/<int:pk>`) is one per view. Requests no route matched (404s, static files) share
    one label, and so do methods outside the usual set: a client cannot mint new series.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        REQUEST_LATENCY.labels(
            route=match.route if match is not None and match.route else UNMATCHED_ROUTE,
            method=request.method if request.method in _METHODS else "other",
            status=str(response.status_code),
        ).observe(time.perf_counter() - started)
        return response


# --- the audit counts ---------------------------------------------------------------------------


def _audit_counts_sql(found: timeline.Bounds | None) -> tuple[str, list[Any]]:
    # The rows above the mark are read from the months that hold them (audit.timeline): bounds
    # drawn for an older mark still hold every row above a newer one.
    where, params = found.where() if found is not None else ("TRUE", [])
    return (
        "SELECT action, severity, SUM(n) FROM ("  # noqa: S608 - table names from the models
        f" SELECT action, severity, count AS n FROM {AuditCount._meta.db_table}"
        " UNION ALL"
        f" SELECT action, severity, COUNT(*) AS n FROM {AuditLog._meta.db_table}"
        f" WHERE id > COALESCE((SELECT counted_to_id FROM {AuditCountMark._meta.db_table}"
        f" WHERE id = 1), 0) AND {where}"
        " GROUP BY action, severity"
        ") AS counts GROUP BY action, severity ORDER BY action, severity",
        params,
    )


def audit_event_counts() -> dict[tuple[str, str], int]:
    """Audit rows per (action, severity), exact at this moment: the rolled-up totals plus the
    rows above the mark, read in one statement so a concurrent advance cannot be seen half."""
    advance_audit_counts()
    mark = AuditCountMark.objects.filter(pk=1).values_list("counted_to_id", flat=True).first()
    sql, params = _audit_counts_sql(timeline.bounds(above=mark or 0))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(action, severity): int(n) for action, severity, n in cursor.fetchall()}


def advance_audit_counts(*, now: datetime | None = None) -> bool:
    """Take the next step of moving the mark up, if one is due; True if the mark moved.

    Costs one primary-key read when nothing is due. Each step is claimed with a conditional
    UPDATE, so several workers scraping at once take it once.
    """
    now = now or timezone.now()
    mark = AuditCountMark.objects.filter(pk=1).first()
    if mark is None:
        AuditCountMark.objects.get_or_create(pk=1)
        return _draw_candidate(AuditCountMark.objects.get(pk=1), now)
    if mark.candidate_id is None:
        return _draw_candidate(mark, now)
    # A candidate is drawn and cleared together with the time it was drawn.
    drawn_at = cast(datetime, mark.candidate_drawn_at)
    on_postgres = connection.vendor == "postgresql"
    if on_postgres and mark.candidate_xmax is None:
        settle = timedelta(seconds=settings.MONITORING_AUDIT_SETTLE_SECONDS)
        if now - drawn_at >= settle:
            _note_xmax(mark)
        return False
    since = mark.advanced_at or drawn_at
    if now - since < timedelta(seconds=settings.MONITORING_AUDIT_ROLLUP_SECONDS):
        return False
    if on_postgres and not snapshots.ended_before(mark.candidate_xmax):
        return False
    return _advance(mark, now)


def _draw_candidate(mark: AuditCountMark, now: datetime) -> bool:
    newest = timeline.newest(AuditLog.objects.only("id", "created_at"), limit=1)
    highest = newest[0].pk if newest else 0
    AuditCountMark.objects.filter(pk=1, candidate_id__isnull=True).update(
        candidate_id=max(highest, mark.counted_to_id),
        candidate_drawn_at=now,
        candidate_xmax=None,
        advanced_at=mark.advanced_at or now,
    )
    return False


def _note_xmax(mark: AuditCountMark) -> None:
    xmax = snapshots.next_transaction()
    AuditCountMark.objects.filter(
        pk=1, candidate_id=mark.candidate_id, candidate_xmax__isnull=True
    ).update(candidate_xmax=xmax)


def _advance(mark: AuditCountMark, now: datetime) -> bool:
    counts = AuditCount._meta.db_table
    with transaction.atomic():
        claimed = AuditCountMark.objects.filter(
            pk=1, counted_to_id=mark.counted_to_id, candidate_id=mark.candidate_id
        ).update(
            counted_to_id=mark.candidate_id,
            advanced_at=now,
            candidate_id=None,
            candidate_drawn_at=None,
            candidate_xmax=None,
        )
        if not claimed:
            return False  # another worker moved it
        found = timeline.bounds(above=mark.counted_to_id, below=cast(int, mark.candidate_id) + 1)
        where, params = found.where() if found is not None else ("TRUE", [])
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {counts} (action, severity, count)"  # noqa: S608
                f" SELECT action, severity, COUNT(*) FROM {AuditLog._meta.db_table}"
                f" WHERE id > %s AND id <= %s AND {where} GROUP BY action, severity"
                " ON CONFLICT (action, severity)"
                f" DO UPDATE SET count = {counts}.count + EXCLUDED.count",
                [mark.counted_to_id, mark.candidate_id, *params],
            )
    # The next candidate at once, so that it has settled by the next hour.
    _draw_candidate(AuditCountMark.objects.get(pk=1), now)
    return True


# --- the collector ------------------------------------------------------------------------------


class DatabaseCollector(Collector):
    """Everything /metrics reads from the database and the health report, at scrape time."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "planbeta_metrics_database_up",
            "1 when this scrape could read the business figures from the database.",
        )
        try:
            families = list(_database_families())
        except DatabaseError as exc:
            if not database_unavailable(exc):
                raise  # a bug: the usual 500, audit row and Sentry event
            # The health figures below still say what is wrong; a failed scrape would hide them.
            logger.warning("metrics: database unavailable (%s)", unavailable_reason(exc))
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families
        yield from _health_families()
        yield from _heartbeat_families()
        info = GaugeMetricFamily(
            "planbeta_build_info", "The running release.", labels=["version", "environment"]
        )
        info.add_metric([settings.APP_VERSION, settings.SENTRY_ENVIRONMENT], 1)
        yield info


def _database_families() -> Iterable[Metric]:
    audit = CounterMetricFamily(
        "planbeta_audit_events",
        "Audit rows written, by action and severity.",
        labels=["action", "severity"],
    )
    for (action, severity), n in audit_event_counts().items():
        audit.add_metric([action, severity], n)
    yield audit

    payments = CounterMetricFamily(
        "planbeta_payments", "Payments recorded, by currency.", labels=["currency"]
    )
    amounts = CounterMetricFamily(
        "planbeta_payment_amount",
        "Sum of the payments recorded, by currency (in that currency).",
        labels=["currency"],
    )
    conversions = CounterMetricFamily(
        "planbeta_conversions",
        "Leads converted into students (one student each), by the invoice's currency.",
        labels=["currency"],
    )
    # A currency's series only once it has a row of that kind, as a GROUP BY would give them.
    for currency, money in money_counts().items():
        if money.payments:
            payments.add_metric([currency], money.payments)
            amounts.add_metric([currency], float(money.amount))
        if money.students:
            conversions.add_metric([currency], money.students)
    yield payments
    yield amounts
    yield conversions

    per_status = {
        row["status"]: row
        for row in Notification.objects.values("status")
        .annotate(n=Count("*"), oldest=Min("created_at"))
        .order_by()
    }
    notifications = GaugeMetricFamily(
        "planbeta_notifications", "Alert outbox rows, by state.", labels=["state"]
    )
    for status in NotificationStatus.values:
        notifications.add_metric([status], per_status[status]["n"] if status in per_status else 0)
    yield notifications
    oldest = [per_status[s]["oldest"] for s in PENDING_STATUSES if s in per_status]
    backlog = GaugeMetricFamily(
        "planbeta_notification_oldest_pending_age_seconds",
        "Age of the oldest outbox row not sent yet (0 when none waits).",
    )
    backlog.add_metric([], (timezone.now() - min(oldest)).total_seconds() if oldest else 0.0)
    yield backlog

    per_rule: dict[str, dict[str, int]] = {}
    for counted in AlertState.objects.values("rule", "state").annotate(n=Count("*")).order_by():
        per_rule.setdefault(counted["rule"], {})[counted["state"]] = counted["n"]
    alerts = GaugeMetricFamily(
        "planbeta_alerts",
        "Alerts (one per rule, or per rule and key), by rule and state.",
        labels=["rule", "state"],
    )
    # Every state of a known rule, zeros included, so that a rule on `state="firing"` has a
    # series to compare before anything fires.
    for rule in sorted(per_rule):
        for state in AlertStatus.values:
            alerts.add_metric([rule, state], per_rule[rule].get(state, 0))
    yield alerts


def _health_families() -> Iterable[Metric]:
    report = health_report()
    status = GaugeMetricFamily(
        "planbeta_health_status",
        "1 for each check's current status (its own, before the site's ceiling; check=overall: "
        "the health endpoint's, check=money: the money endpoint's), else 0.",
        labels=["check", "status"],
    )
    checks = {
        "overall": report.status(SITE),
        "money": report.status(MONEY),
        **{n: r.status for n, r in report.results.items()},
    }
    for name, current in checks.items():
        for candidate in HEALTH_STATUSES:
            status.add_metric([name, candidate], 1 if candidate == current else 0)
    yield status
    duration = GaugeMetricFamily(
        "planbeta_health_check_duration_seconds",
        "How long each health check took in the latest report (checks skipped are left out).",
        labels=["check"],
    )
    for name, seconds in report.durations.items():
        duration.add_metric([name], seconds)
    yield duration
    error_rate = report.results["errorRate"].fields
    if "total" in error_rate:
        total = error_rate["total"]
        errors = error_rate["errors"] + error_rate["critical"]
        ratio = GaugeMetricFamily(
            "planbeta_error_rate_ratio",
            "ERROR and CRITICAL audit rows over all audit rows of the last hour (0 with none).",
        )
        ratio.add_metric([], errors / total if total else 0.0)
        yield ratio
        sample = GaugeMetricFamily(
            "planbeta_error_rate_events", "Audit rows of the last hour that the error rate reads."
        )
        sample.add_metric([], total)
        yield sample


def _heartbeat_families() -> Iterable[Metric]:
    if not settings.HEALTH_EXPECT_HEARTBEAT:
        return
    age = heartbeat_age_seconds()
    heartbeat = GaugeMetricFamily(
        "planbeta_heartbeat_age_seconds",
        "Seconds since the worker last recorded beat's heartbeat (+Inf: none recorded).",
    )
    heartbeat.add_metric([], math.inf if age is None else age)
    yield heartbeat


# --- the endpoint -------------------------------------------------------------------------------


class _ThisProcessLatency(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from _process_registry.collect()


_registry_lock = threading.Lock()
_registry: CollectorRegistry | None = None


def scrape_registry() -> CollectorRegistry:
    """The registry /metrics serves: the database collector and the latency histograms, read
    from every worker's files in multiprocess mode, else this process's own."""
    global _registry
    with _registry_lock:
        if _registry is None:
            registry = CollectorRegistry()
            registry.register(DatabaseCollector())
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                multiprocess.MultiProcessCollector(registry)
            else:
                registry.register(_ThisProcessLatency())
            _registry = registry
        return _registry


def _bearer_ok(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape: `Authorization: Bearer $METRICS_TOKEN`, else 401.

    A browser session, even a founder's, is not enough: the figures are for the scraper, which
    holds the token in a file, and the endpoint needs no session or user lookup.
    """
    if not _bearer_ok(request):
        response = HttpResponse(
            "401 Unauthorized: send Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The 0.0.4 text format, which every Prometheus reads (2.x included); all our names are
    # plain ASCII, so its body is the same as 1.0.0's.
    body = generate_latest(scrape_registry())
    response = HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
