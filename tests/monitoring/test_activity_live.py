"""The dashboard's live stream (monitoring.live): who gets one, what it sends, when it gives up."""

import pytest
from django.db import connection, transaction

from audit.models import Action
from audit.services import AuditEntry, audit_record
from monitoring import live

URL = "/dashboard/activity/events"
# What gunicorn's threaded workers and runserver say; Django's test client says False.
THREADED = {"wsgi.multithread": True}


@pytest.fixture
def no_doorbell_left():
    # The doorbell holds a connection to the test database, which must be gone before it is
    # dropped; and each test starts with no stream open.
    yield
    live.stop_doorbell()
    assert live.open_streams() == 0


def test_anonymous_is_sent_to_the_login_page(anon_client, db):
    response = anon_client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["teacher", "marketing"])
def test_staff_who_are_not_founders_are_refused(anon_client, request, persona):
    anon_client.force_login(request.getfixturevalue(persona))
    assert anon_client.get(URL, **THREADED).status_code == 403


def test_a_server_that_serves_one_request_at_a_time_gets_no_stream(anon_client, founder):
    # gunicorn's sync workers: a stream would hold the whole worker. 204 stops EventSource.
    anon_client.force_login(founder)
    response = anon_client.get(URL)
    assert response.status_code == 204
    assert live.open_streams() == 0


def test_push_switched_off_gets_no_stream(anon_client, founder, settings):
    settings.ACTIVITY_PUSH = False
    anon_client.force_login(founder)
    assert anon_client.get(URL, **THREADED).status_code == 204


def test_the_dashboard_names_its_stream(anon_client, founder):
    anon_client.force_login(founder)
    html = anon_client.get("/dashboard/activity").content.decode()
    assert f'data-events-url="{URL}"' in html


def _commit_audit_row(description):
    with transaction.atomic():
        audit_record(AuditEntry(Action.LEAD_CREATED, description=description))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_committed_row_rings_and_a_rolled_back_one_does_not(
    anon_client, founder, settings, no_doorbell_left
):
    settings.ACTIVITY_STREAM_HEARTBEAT_SECONDS = 1
    settings.ACTIVITY_STREAM_SECONDS = 120
    anon_client.force_login(founder)
    response = anon_client.get(URL, **THREADED)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache, no-store"
    events = iter(response.streaming_content)
    assert next(events) == live.READY
    assert live.open_streams() == 1
    # The stream gave back the request's database connection: it holds none while it waits.
    assert connection.connection is None

    # Nothing happened: the next second brings a keep-alive only.
    assert next(events) == live.KEEP_ALIVE

    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(AuditEntry(Action.LEAD_CREATED, description="rolled back"))
        raise RuntimeError("the change fails")
    assert next(events) == live.KEEP_ALIVE

    _commit_audit_row("committed")
    # The heartbeat is a second: without the ring this would be a keep-alive.
    chunk = next(events)
    if chunk == live.KEEP_ALIVE:  # a heartbeat fell due just before the ring came in
        chunk = next(events)
    assert chunk == live.AUDIT

    response.close()
    assert live.open_streams() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_process_holds_no_more_streams_than_its_limit(
    anon_client, founder, settings, no_doorbell_left
):
    settings.ACTIVITY_STREAMS_PER_PROCESS = 1
    anon_client.force_login(founder)
    first = anon_client.get(URL, **THREADED)
    assert first.status_code == 200
    assert anon_client.get(URL, **THREADED).status_code == 204
    # A stream that was never read from still gives its place back when it is closed.
    first.close()
    again = anon_client.get(URL, **THREADED)
    assert again.status_code == 200
    again.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_lost_listening_connection_sends_the_page_back_to_polling(
    anon_client, founder, settings, no_doorbell_left
):
    settings.ACTIVITY_STREAM_HEARTBEAT_SECONDS = 30
    anon_client.force_login(founder)
    response = anon_client.get(URL, **THREADED)
    events = iter(response.streaming_content)
    assert next(events) == live.READY
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'planbeta-live'"
        )
        assert cursor.fetchone() == (True,)
    assert next(events) == live.FALLBACK
    with pytest.raises(StopIteration):
        next(events)
    response.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_doorbell_that_cannot_connect_sends_the_page_back_to_polling(monkeypatch, settings):
    monkeypatch.setattr(live, "CONNECT_WAIT", 0.5)
    params = {**live.listen_params(), "host": "127.0.0.1", "port": 1}
    bell = live.Doorbell(params)
    bell.start()
    try:
        assert live.take_slot()
        stream = live.Stream(bell)
        assert list(stream) == [live.FALLBACK]
        stream.close()
        assert live.open_streams() == 0
    finally:
        bell.stop()
