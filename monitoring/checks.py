"""Health checks for uptime monitors, the readiness probe and the alert rules.

Each `check_*` function is small, bounded in time and returns a `CheckResult`: the status and the
fields CONTRACT §4 shows for that check, plus `value`, the raw measurement (milliseconds, percent,
seconds) for code that wants a number rather than a string. `collect_health` runs them all, folds
them into one status and caches the result for a few seconds.

Which failure means what (also in the README):
* unhealthy (HTTP 503): the database cannot be reached or does not answer `SELECT 1` within its
  statement timeout: nothing works. Also a Celery heartbeat older than 10 minutes: beat or the
  workers are dead, and the alerts with them.
* degraded (HTTP 200): the database is slow (query above the 1 s threshold or timed out), the
  error rate is above 5 %, money operations failed recently, Redis (cache and Celery broker) does
  not answer, or the Celery heartbeat is stale (over 3 minutes). The site serves.

Money operations have a report of their own (scope MONEY: the database and `moneyOperations`),
which is unhealthy when they keep failing while the site itself is up; on the site's report the
same check counts as degraded at worst (SITE_CEILING), so that an uptime monitor does not call a
site that serves "down".
"""

from __future__ import annotations

import hmac
import logging
import selectors
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.utils import timezone

from alerts.checks import NO_CHANNEL_HINT, NO_CHANNEL_MESSAGE, channel_kinds
from audit.models import Action, Severity
from audit.selectors import activity_counts, error_rate, latest_row, money_outcomes
from core import db_deadline

logger = logging.getLogger(__name__)

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

HEARTBEAT_KEY = "monitoring:heartbeat"

# Models counted in systemMetrics. Students, invoices and payments belong to other apps and may not
# be installed yet; a missing model is left out of the body rather than failing the check.
ENTITY_MODELS = {
    "students": ("payments", "Student"),
    "leads": ("leads", "Lead"),
    "invoices": ("invoices", "Invoice"),
    "payments": ("payments", "Payment"),
}


def db_alias() -> str:
    return settings.HEALTH_CHECK_DATABASE


@dataclass
class CheckResult:
    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, **self.fields}


def worst(statuses: list[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default=HEALTHY)


@contextmanager
def _bounded_cursor(alias: str, timeout_ms: int) -> Iterator[Any]:
    """A cursor in its own transaction whose statements are cancelled after `timeout_ms`.

    SET LOCAL ends with the transaction, so the limit never leaks into the connection that the
    rest of the request (or the next request) uses.
    """
    deadline = getattr(_budget, "deadline", None)
    if deadline is not None:
        remaining = (deadline - time.perf_counter()) * 1000
        if remaining < 50:
            raise TimeoutError("health check time budget exhausted")
        timeout_ms = min(timeout_ms, remaining)
    conn = connections[alias]
    # The statement timeout covers a slow server; the call deadline a server (or network) that
    # stopped answering, which no statement timeout can report. It leaves the server time to
    # cancel first, so that a slow query is "cancelled", not "connection lost".
    with (
        db_deadline.limit(timeout_ms / 1000 + 0.5),
        transaction.atomic(using=alias),
        conn.cursor() as cursor,
    ):
        if conn.vendor == "postgresql":
            cursor.execute("SET LOCAL statement_timeout = %s", [f"{int(timeout_ms)}ms"])
        yield cursor


# One deadline for all database checks of a report, so that a database that is up but crawling
# cannot add up each check's own timeout.
_budget = threading.local()


# --- database ---------------------------------------------------------------------------------


def check_database() -> CheckResult:
    """Can we connect and run `SELECT 1` within 1 s? The one check that alone makes us unhealthy."""
    try:
        with _bounded_cursor(db_alias(), settings.HEALTH_DB_CONNECT_CHECK_MS) as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        # The exception text can carry the host and user of the connection string.
        logger.warning("health: database unavailable (%s)", type(exc).__name__)
        return CheckResult(UNHEALTHY, {"message": f"Database unavailable ({type(exc).__name__})"})
    return CheckResult(HEALTHY, {"message": "Database connection OK"})


def check_database_performance(*, timeout_ms: int | None = None) -> CheckResult:
    """Time the probe query; `value` is the query time in milliseconds (None if it timed out).

    `timeout_ms` lets a caller with a higher threshold (the slow-database alert) wait longer.
    """
    threshold = settings.HEALTH_DB_SLOW_MS
    timeout = timeout_ms or settings.HEALTH_DB_TIMEOUT_MS
    probe = settings.HEALTH_DB_PROBE_SQL
    fields: dict[str, Any] = {"threshold": f"{threshold}ms"}
    started = time.perf_counter()
    try:
        with _bounded_cursor(db_alias(), timeout) as cursor:
            cursor.execute(probe)
            cursor.fetchall()
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        cancelled = type(exc.__cause__).__name__ == "QueryCanceled"
        fields.update(
            queryTime=f"{elapsed:.0f}ms",
            message=(
                "Probe query cancelled by the statement timeout"
                if cancelled
                else f"Probe query failed ({type(exc).__name__})"
            ),
        )
        return CheckResult(DEGRADED, fields, None)
    elapsed = (time.perf_counter() - started) * 1000
    fields["queryTime"] = f"{elapsed:.0f}ms"
    return CheckResult(DEGRADED if elapsed > threshold else HEALTHY, fields, elapsed)


# --- error rate and business activity (from the audit log) ------------------------------------


def check_error_rate(*, now: datetime | None = None) -> CheckResult:
    """Server-side failures among the last hour's audit events; `value` is the rate in percent.

    The rate is `audit.selectors.error_rate`, the one the error-rate alert reads too.
    """
    degraded_above = settings.HEALTH_ERROR_RATE_DEGRADED
    min_events = settings.HEALTH_ERROR_RATE_MIN_EVENTS
    with _bounded_cursor(db_alias(), settings.HEALTH_QUERY_TIMEOUT_MS):
        counts = error_rate(now=now or timezone.now(), using=db_alias())
    rate, total = counts.percent, counts.total
    # Never unhealthy: failing e-mails or a buggy page raise the rate while the site serves and
    # payments commit; money operations that fail are judged by check_money_operations.
    if total < min_events:
        status = HEALTHY  # 1 error in 2 events is noise, not an outage
    elif rate > degraded_above:
        status = DEGRADED
    else:
        status = HEALTHY
    fields = {
        "errorRate": f"{rate:.1f}%",
        "errors": counts.errors,
        "critical": counts.critical,
        "total": total,
        "period": "last 1 hour",
    }
    if total < min_events:
        fields["message"] = f"Not judged below {min_events} events"
    return CheckResult(status, fields, rate)


def check_recent_activity(*, now: datetime | None = None) -> CheckResult:
    """Conversions and payments of the last 24 h, read from the audit log (information only)."""
    with _bounded_cursor(db_alias(), settings.HEALTH_QUERY_TIMEOUT_MS):
        activity = activity_counts(
            now=now or timezone.now(), window=timedelta(hours=24), using=db_alias()
        )
    return CheckResult(
        HEALTHY,
        {
            "conversions": activity.conversions,
            "payments": activity.payments,
            "period": "last 24 hours",
        },
    )


# --- reconciliation of money and trail (monitoring.reconciliation) ----------------------------


def check_reconciliation(*, now: datetime | None = None) -> CheckResult:
    """The latest reconciliation's result, as its RECONCILIATION audit row recorded it.

    Read, not recomputed: a reconciliation reads every payment, while this body is asked for
    every minute. Beat runs it every RECONCILIATION_SECONDS (and `manage.py reconcile` records
    its run too). A mismatch is unhealthy: the books and the trail disagree.
    """
    now = now or timezone.now()
    with _bounded_cursor(db_alias(), settings.HEALTH_QUERY_TIMEOUT_MS):
        row = latest_row(Action.RECONCILIATION, using=db_alias())
    if row is None:
        return CheckResult(HEALTHY, {"message": "No reconciliation has run yet", "lastRun": None})
    meta = row["metadata"] or {}
    fields = {
        "lastRun": row["created_at"].isoformat(),
        "ranBy": {"TASK": "beat", "COMMAND": "command"}.get(row["source"], "system"),
        "mismatches": meta.get("mismatchCount", 0),
        "auditId": row["id"],
    }
    if row["severity"] != Severity.INFO:
        return CheckResult(
            UNHEALTHY,
            {"message": "Money rows and audit trail disagree (see the audit row)", **fields},
        )
    age = (now - row["created_at"]).total_seconds()
    # Without beat (tasks inline, the quick start) nothing reruns it, so its age means nothing.
    if settings.HEALTH_EXPECT_HEARTBEAT and age > 3 * settings.RECONCILIATION_SECONDS:
        return CheckResult(DEGRADED, {"message": "The latest reconciliation is old", **fields})
    return CheckResult(HEALTHY, {"message": "Money rows and audit trail agree", **fields})


def check_money_operations(*, now: datetime | None = None) -> CheckResult:
    """Failed money operations in the window; `value` is how many failed.

    degraded: at least one failed in the window. unhealthy: the last HEALTH_MONEY_FAILURES_UNHEALTHY
    in a row failed, none succeeding since (money operations are failing now, not once).
    WARNING rows (a refused second conversion, a COMMIT that did commit) are not failures.
    """
    minutes = settings.HEALTH_MONEY_WINDOW_MINUTES
    in_a_row_limit = settings.HEALTH_MONEY_FAILURES_UNHEALTHY
    with _bounded_cursor(db_alias(), settings.HEALTH_QUERY_TIMEOUT_MS):
        outcomes = money_outcomes(
            now=now or timezone.now(), window=timedelta(minutes=minutes), using=db_alias()
        )
    failures, in_a_row = outcomes.failures, outcomes.failed_in_a_row
    last_failure, last_success = outcomes.last_failure, outcomes.last_success
    fields: dict[str, Any] = {
        "failures": failures,
        "failedInARow": in_a_row,
        "threshold": f"{in_a_row_limit} in a row",
        "lastFailure": last_failure.isoformat() if last_failure else None,
        "lastSuccess": last_success.isoformat() if last_success else None,
        "period": f"last {minutes} minutes",
    }
    if in_a_row >= in_a_row_limit:
        status, message = UNHEALTHY, f"The last {in_a_row} money operations failed"
    elif failures:
        status, message = DEGRADED, f"{failures} money operation(s) failed"
        if last_success is not None and last_failure is not None and last_success > last_failure:
            message += "; the latest succeeded"
    else:
        status, message = HEALTHY, "No money operation failed"
    return CheckResult(status, {"message": message, **fields}, failures)


# --- entity counts ----------------------------------------------------------------------------


def check_system_metrics() -> CheckResult:
    """Row counts of the business tables; estimated on PostgreSQL so big tables are not scanned."""
    alias = db_alias()
    fields: dict[str, Any] = {}
    with _bounded_cursor(alias, settings.HEALTH_QUERY_TIMEOUT_MS) as cursor:
        for name, (app_label, model_name) in ENTITY_MODELS.items():
            try:
                model = apps.get_model(app_label, model_name)
            except LookupError:
                continue
            fields[name] = _row_count(cursor, alias, model)
    return CheckResult(HEALTHY, fields)


def _row_count(cursor: Any, alias: str, model: Any) -> int:
    exact_below = settings.HEALTH_EXACT_COUNT_BELOW
    if connections[alias].vendor == "postgresql":
        # The planner's estimate, kept fresh by autovacuum/ANALYZE: reading it costs one catalog
        # row whatever the table size. -1 means never analysed.
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
        estimate = row[0] if row else -1
        if estimate >= exact_below:
            return int(estimate)
    return model._default_manager.using(alias).count()


# --- Redis and Celery -------------------------------------------------------------------------


def check_redis() -> CheckResult:
    """PING the Redis that serves as cache and Celery broker, with half-second socket timeouts."""
    url = settings.REDIS_URL
    if not url:
        return CheckResult(HEALTHY, {"message": "Not configured: tasks run inline"})
    import redis  # only needed when Redis is configured

    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        logger.warning("health: redis unavailable (%s)", type(exc).__name__)
        return CheckResult(DEGRADED, {"message": f"Redis unavailable ({type(exc).__name__})"})
    elapsed = (time.perf_counter() - started) * 1000
    return CheckResult(
        HEALTHY, {"message": "Redis OK", "responseTime": f"{elapsed:.0f}ms"}, elapsed
    )


def record_heartbeat(*, now: datetime | None = None) -> None:
    """Called by the beat-scheduled task on a worker: proves beat, broker and worker all run."""
    cache.set(HEARTBEAT_KEY, (now or timezone.now()).timestamp(), timeout=24 * 3600)


def heartbeat_age_seconds(*, now: datetime | None = None) -> float | None:
    """Seconds since the last heartbeat, or None if none was recorded (or the cache is down)."""
    try:
        stamp = cache.get(HEARTBEAT_KEY)
    except Exception as exc:
        logger.warning("health: heartbeat unreadable (%s)", type(exc).__name__)
        return None
    if stamp is None:
        return None
    return max(0.0, (now or timezone.now()).timestamp() - float(stamp))


def check_celery(*, now: datetime | None = None) -> CheckResult:
    if not settings.HEALTH_EXPECT_HEARTBEAT:
        return CheckResult(HEALTHY, {"message": "Not applicable: tasks run inline"})
    stale_after = settings.HEALTH_HEARTBEAT_STALE_SECONDS
    age = heartbeat_age_seconds(now=now)
    if age is None:
        return CheckResult(DEGRADED, {"message": "No worker heartbeat recorded", "lastBeat": None})
    last = datetime.fromtimestamp((now or timezone.now()).timestamp() - age, tz=UTC)
    fields = {
        "lastBeat": last.isoformat(),
        "age": f"{age:.0f}s",
        "threshold": f"{stale_after:.0f}s",
    }
    # Past this age beat or every worker is dead, and with them the alert rules that would
    # report it: only an outside uptime monitor can still tell anyone, so health says unhealthy.
    dead_after = settings.HEALTH_HEARTBEAT_DEAD_SECONDS
    if age > dead_after:
        message = "No worker heartbeat for too long: scheduled tasks and alerts are not running"
        return CheckResult(UNHEALTHY, {"message": message, **fields}, age)
    if age > stale_after:
        return CheckResult(DEGRADED, {"message": "Worker heartbeat is stale", **fields}, age)
    return CheckResult(HEALTHY, {"message": "Worker heartbeat fresh", **fields}, age)


# --- alerting ---------------------------------------------------------------------------------


def check_alerting() -> CheckResult:
    """Is any alert channel configured? Without one, alerts reach nobody: degraded, not unhealthy.

    Degraded because payments still commit and the rules still record what they would send; but
    the founders learn of trouble only from this body, so an uptime monitor that reports anything
    but `healthy` is then the last one to tell them.
    """
    kinds = channel_kinds()
    if not kinds:
        return CheckResult(DEGRADED, {"message": f"{NO_CHANNEL_MESSAGE} {NO_CHANNEL_HINT}"})
    return CheckResult(HEALTHY, {"message": "Alerts go to: " + ", ".join(kinds)})


# --- the whole report -------------------------------------------------------------------------


def _check_audit_chain() -> CheckResult:
    # Imported here: monitoring.audit_chain builds on this module.
    from monitoring.audit_chain import check_audit_chain

    return check_audit_chain()


def _check_audit_partitions() -> CheckResult:
    from monitoring.audit_partitions import check_audit_partitions

    return check_audit_partitions()


# Checks that read the database are skipped when the connection check fails: each would wait for
# its own timeout and the report must come back within about two seconds.
_DB_CHECKS: list[tuple[str, Callable[[], CheckResult]]] = [
    ("databasePerformance", check_database_performance),
    ("errorRate", check_error_rate),
    ("moneyOperations", check_money_operations),
    ("systemMetrics", check_system_metrics),
    ("recentActivity", check_recent_activity),
    ("auditChain", _check_audit_chain),
    ("auditPartitions", _check_audit_partitions),
    ("reconciliation", check_reconciliation),
]
_OTHER_CHECKS: list[tuple[str, Callable[[], CheckResult]]] = [
    ("redis", check_redis),
    ("celery", check_celery),
    ("alerting", check_alerting),
]

# The two reports: the site (/api/system/health, every check) and money operations
# (/api/system/health/money: can a payment be recorded now?).
SITE = "site"
MONEY = "money"
MONEY_CHECKS = ("database", "moneyOperations")
# On the site's report these count as degraded at worst: the site is up and serves, so an uptime
# monitor must not report it down; the money report judges them in full.
SITE_CEILING = {"moneyOperations": DEGRADED}


@dataclass(frozen=True)
class HealthReport:
    """One run of every check: the raw results (before any ceiling), when it ran, and each
    check's run time in seconds (for /metrics; checks skipped are left out)."""

    results: dict[str, CheckResult]
    checked_at: datetime
    response_time_ms: float
    durations: dict[str, float] = field(default_factory=dict)

    def scoped(self, scope: str) -> dict[str, CheckResult]:
        """The checks of one report, with the site's ceilings applied to the site's."""
        if scope == MONEY:
            return {name: self.results[name] for name in MONEY_CHECKS}
        return {
            name: _at_most(result, SITE_CEILING.get(name, UNHEALTHY))
            for name, result in self.results.items()
        }

    def status(self, scope: str) -> str:
        return worst([r.status for r in self.scoped(scope).values()])


def _at_most(result: CheckResult, ceiling: str) -> CheckResult:
    if _RANK[result.status] <= _RANK[ceiling]:
        return result
    return replace(result, status=ceiling)


def run_checks() -> HealthReport:
    """Run every check now, uncached."""
    durations: dict[str, float] = {}
    started = time.perf_counter()
    results: dict[str, CheckResult] = {"database": _guarded("database", check_database, durations)}
    db_up = results["database"].status == HEALTHY
    _budget.deadline = time.perf_counter() + settings.HEALTH_DB_BUDGET_MS / 1000
    try:
        for name, fn in _DB_CHECKS:
            if not db_up:
                results[name] = CheckResult(UNHEALTHY, {"message": "Skipped: database unavailable"})
                continue
            results[name] = _guarded(name, fn, durations)
    finally:
        _budget.deadline = None
    for name, fn in _OTHER_CHECKS:
        results[name] = _guarded(name, fn, durations)
    return HealthReport(
        results=results,
        checked_at=timezone.now(),
        response_time_ms=(time.perf_counter() - started) * 1000,
        durations=durations,
    )


def _guarded(name: str, fn: Callable[[], CheckResult], durations: dict[str, float]) -> CheckResult:
    # A check that breaks (a timeout, a missing table) makes the system degraded, not the endpoint
    # a 500: the uptime monitor must still get a body. Only a failed connection check (or a
    # measured failure, such as a dead heartbeat) makes it unhealthy.
    started = time.perf_counter()
    try:
        return fn()
    except Exception as exc:
        logger.warning("health: check %s failed (%s)", name, type(exc).__name__)
        return CheckResult(DEGRADED, {"message": f"Check failed ({type(exc).__name__})"})
    finally:
        durations[name] = time.perf_counter() - started


_cache_lock = threading.Lock()
_cached: dict[str, Any] = {}


def health_report() -> HealthReport:
    """The latest report, computed at most once per HEALTH_CACHE_SECONDS per process.

    The lock makes a burst of requests wait for one computation instead of each running the checks.
    """
    ttl = settings.HEALTH_CACHE_SECONDS
    with _cache_lock:
        report = _cached.get("report")
        if report is None or time.time() - _cached["at"] >= ttl:
            report = run_checks()
            _cached.update(report=report, at=time.time())
    return report


def http_status(status: str) -> int:
    return 503 if status == UNHEALTHY else 200


def report_body(report: HealthReport, *, scope: str, detailed: bool) -> dict[str, Any]:
    """The body of GET /api/system/health (or /health/money) in this project's own JSON."""
    status = report.status(scope)
    timestamp = report.checked_at.isoformat()
    if not detailed:
        return {"status": status, "timestamp": timestamp}
    return {
        "status": status,
        "timestamp": timestamp,
        "responseTime": f"{report.response_time_ms:.0f}ms",
        "checks": {name: r.as_dict() for name, r in report.scoped(scope).items()},
        "version": settings.APP_VERSION,
        "environment": settings.SENTRY_ENVIRONMENT,
    }


def collect_health(*, detailed: bool, scope: str = SITE) -> tuple[dict[str, Any], int]:
    """The health body and HTTP status of one report, from the cached run of the checks."""
    report = health_report()
    return report_body(report, scope=scope, detailed=detailed), http_status(report.status(scope))


def reset_health_cache() -> None:
    with _cache_lock:
        _cached.clear()


def check_readiness() -> bool:
    """Does the database answer `SELECT 1` within HEALTH_READY_TIMEOUT_MS? Uncached.

    The contract gives readiness 1 s, connection included, and libpq (psycopg too) rounds any
    connect_timeout below 2 s up to 2 s. So on PostgreSQL the probe drives libpq's non-blocking
    connect and query itself under one deadline, and closes the connection whatever happens: a
    server that accepts TCP and never speaks costs readiness 0.9 s, not 2, and leaves no socket.
    """
    alias = db_alias()
    wrapper = connections[alias]
    if wrapper.vendor != "postgresql":
        return check_database().status == HEALTHY
    from psycopg.conninfo import make_conninfo  # only on PostgreSQL

    # Django's own connection parameters (host, credentials, OPTIONS), minus the Python objects
    # that only its connection class understands.
    params = {
        key: value
        for key, value in wrapper.get_connection_params().items()
        if isinstance(value, str | int)
    }
    timeout = settings.HEALTH_READY_TIMEOUT_MS / 1000
    try:
        _select_one_within(make_conninfo("", **params), time.monotonic() + timeout)
    except Exception as exc:
        logger.warning("readyz: database not ready (%s)", type(exc).__name__)
        return False
    return True


def _select_one_within(conninfo: str, deadline: float) -> None:
    """Connect, run `SELECT 1` and disconnect, raising TimeoutError at `deadline`."""
    from psycopg import pq

    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        # libpq's polling protocol for a connection being set up: start as if told to write.
        poll: int = pq.PollingStatus.WRITING
        while poll != pq.PollingStatus.OK:
            if poll == pq.PollingStatus.FAILED or pgconn.status == pq.ConnStatus.BAD:
                raise ConnectionError("connection failed")
            _wait_socket(pgconn.socket, write=poll == pq.PollingStatus.WRITING, deadline=deadline)
            poll = pgconn.connect_poll()
        pgconn.nonblocking = 1
        pgconn.send_query(b"SELECT 1")
        while pgconn.flush():
            _wait_socket(pgconn.socket, write=True, deadline=deadline)
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                break
            _wait_socket(pgconn.socket, write=False, deadline=deadline)
        result = pgconn.get_result()
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            raise ConnectionError("SELECT 1 failed")
    finally:
        pgconn.finish()


def _wait_socket(fileno: int, *, write: bool, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no answer within the readiness deadline")
    with selectors.DefaultSelector() as selector:
        selector.register(fileno, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        if not selector.select(remaining):
            raise TimeoutError("no answer within the readiness deadline")


def is_health_token(raw: str) -> bool:
    expected = settings.HEALTH_CHECK_TOKEN
    return bool(expected) and hmac.compare_digest(raw.encode(), expected.encode())
