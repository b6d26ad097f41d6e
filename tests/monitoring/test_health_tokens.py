"""User tokens on the health endpoints: a flood of made-up ones reaches the database at most
HEALTH_TOKEN_MISSES_PER_MINUTE times a minute, and the roles see what they saw before."""

import secrets

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import make_token

pytestmark = pytest.mark.django_db

HEALTH = "/api/system/health"
SUMMARY = ["status", "timestamp"]


def made_up() -> str:
    return "pb_" + secrets.token_urlsafe(32)


def health(raw: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    with CaptureQueriesContext(connection) as queries:
        response = Client(**headers).get(HEALTH)
    return response, len(queries)


@pytest.fixture(autouse=True)
def _report_cached():
    # The checks run once (on their own connection); what is measured here is the token.
    assert Client().get(HEALTH).status_code == 200


def test_a_made_up_token_twice_gets_the_summary_and_the_second_costs_no_query():
    raw = made_up()
    first, first_queries = health(raw)
    second, second_queries = health(raw)
    assert sorted(first.json()) == sorted(second.json()) == SUMMARY
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first_queries, second_queries) == (1, 0)


@pytest.mark.parametrize(
    ("persona", "detailed"),
    [("anonymous", False), ("teacher", False), ("marketing", False), ("founder", True)],
)
def test_roles_see_what_they_saw_before(request, persona, detailed):
    raw = None if persona == "anonymous" else make_token(request.getfixturevalue(persona))
    response, _ = health(raw)
    assert response.status_code == 200
    assert ("checks" in response.json()) is detailed


def test_a_founder_token_issued_now_gets_the_details_after_made_up_ones(founder):
    health(made_up())
    response, _ = health(make_token(founder))
    assert "checks" in response.json()


@time_machine.travel("2026-12-01 10:00:05+00:00", tick=False)
def test_past_the_budget_new_made_up_tokens_are_not_looked_up_until_the_minute_ends(settings):
    settings.HEALTH_TOKEN_MISSES_PER_MINUTE = 2
    spent = [health(made_up())[1] for _ in range(3)]
    assert spent == [1, 1, 0]
    response, _ = health(made_up())
    assert sorted(response.json()) == SUMMARY
    with time_machine.travel("2026-12-01 10:01:00+00:00", tick=False):
        assert health(made_up())[1] == 1


@time_machine.travel("2026-12-01 10:00:05+00:00", tick=False)
def test_past_the_budget_a_founder_token_gets_the_summary_on_health_only(settings, founder):
    # The documented price of the budget: health's details wait for the next minute, while the
    # API itself still takes the token.
    settings.HEALTH_TOKEN_MISSES_PER_MINUTE = 1
    health(made_up())
    raw = make_token(founder)
    response, queries = health(raw)
    assert sorted(response.json()) == SUMMARY
    assert queries == 0
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/me").status_code == 200


def test_the_health_check_token_never_touches_the_database(settings):
    settings.HEALTH_CHECK_TOKEN = "uptime-secret-0123456789"
    settings.HEALTH_TOKEN_MISSES_PER_MINUTE = 1
    health(made_up())
    response, queries = health("uptime-secret-0123456789")
    assert "checks" in response.json()
    assert queries == 0
