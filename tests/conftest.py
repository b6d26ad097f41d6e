"""Personas and shared fixtures. App-specific fixtures live in tests/<app>/conftest.py."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client

from accounts.models import Role
from monitoring.checks import reset_health_cache
from tests import database
from tests.dbproxy import DatabaseProxy
from tests.factories import make_token, make_user

PASSWORD = "correct-horse-battery-staple"


def pytest_collection_modifyitems(config, items):
    on_postgres = connection.vendor == "postgresql"
    has_redis = bool(os.environ.get("REDIS_URL"))
    if os.environ.get("CI") == "true" and not (on_postgres and has_redis):
        raise pytest.UsageError(
            "CI runs the whole suite on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL."
        )
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    skip_redis = pytest.mark.skip(reason="needs Redis (set REDIS_URL)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not has_redis:
            item.add_marker(skip_redis)


# --- the database: migrated by the owner, used as the application role (tests/database.py) ---


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    database.prepare_owner()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database.serve_as_app_role()
    yield
    with django_db_blocker.unblock():
        database.back_to_owner()


@pytest.fixture
def owner_connection(db):
    """For DDL the application role may not run (a trigger or constraint that injects a failure).

    Autocommit, and visible to the application's connections only once committed: use it in
    transactional tests, or the DDL waits for the test's own transaction's locks.
    """
    return database.owner_connection()


@pytest.fixture
def payment_insert_fails(db):
    """The payment insert fails: a real database error after the student row was written in the
    same transaction. Yields a function that lifts it again."""
    with database.inserts_refused("payments_payment", "injected: payments are refused") as lift:
        yield lift


def pytest_terminal_summary(terminalreporter):
    if line := database.summary():
        terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _fresh_health_cache():
    # The health report is cached per process for a few seconds of wall-clock time, which tests
    # freeze and move: without this, one test could read the report another test produced.
    reset_health_cache()
    yield
    reset_health_cache()


@pytest.fixture(autouse=True)
def _health_reads_the_test_transaction(settings):
    # Health checks run on their own connection (the "health" alias), which cannot see rows a
    # test wrote inside its transaction; the tests of that connection set it back themselves.
    settings.HEALTH_CHECK_DATABASE = "default"


@pytest.fixture
def db_proxy():
    """A DatabaseProxy (tests/dbproxy.py) in front of the test database's server."""
    db = connections["default"].settings_dict
    proxy = DatabaseProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    yield proxy
    proxy.close()


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _spool_per_test(settings, tmp_path):
    # Rows spooled by one test (audit.spool) must not be replayed into the next one's database.
    settings.AUDIT_SPOOL_DIR = tmp_path / "audit-spool"


@pytest.fixture
def founder(db):
    return make_user(
        email="founder@example.com", name="Fiona Founder", role=Role.FOUNDER, password=PASSWORD
    )


@pytest.fixture
def marketing(db):
    return make_user(
        email="marketing@example.com", name="Manu Marketing", role=Role.MARKETING, password=PASSWORD
    )


@pytest.fixture
def teacher(db):
    return make_user(
        email="teacher@example.com", name="Tara Teacher", role=Role.TEACHER, password=PASSWORD
    )


@pytest.fixture
def anon_client():
    return Client()


def _token_client(user) -> Client:
    raw = make_token(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def founder_client(founder):
    return _token_client(founder)


@pytest.fixture
def marketing_client(marketing):
    return _token_client(marketing)


@pytest.fixture
def teacher_client(teacher):
    return _token_client(teacher)


@pytest.fixture
def persona_client(request, anon_client):
    """Parametrise with indirect=True over "anonymous", "teacher", "marketing", "founder"."""
    name = request.param
    if name == "anonymous":
        return anon_client
    return request.getfixturevalue(f"{name}_client")
