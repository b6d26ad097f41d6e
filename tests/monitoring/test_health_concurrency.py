import threading

import pytest
from django.db import connection
from django.test import Client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def probe_counter(settings, owner_connection):
    """A probe query that counts its own runs: sequences advance outside transactions."""
    with owner_connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE health_probe_runs")
    settings.HEALTH_DB_PROBE_SQL = "SELECT nextval('health_probe_runs')"
    yield lambda: _runs()
    with owner_connection.cursor() as cursor:
        cursor.execute("DROP SEQUENCE health_probe_runs")


def _runs() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM health_probe_runs"
        )
        return cursor.fetchone()[0]


def test_a_burst_of_concurrent_requests_runs_the_checks_once(probe_counter):
    n = 20
    barrier = threading.Barrier(n)
    statuses = []

    def hit():
        try:
            barrier.wait()
            statuses.append(Client().get("/api/system/health").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=hit) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * n
    assert probe_counter() == 1
