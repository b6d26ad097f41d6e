"""Bearer tokens nobody holds cost no database round trip once they were looked up (accounts.auth).

A flood of made-up tokens would otherwise be one query each. A token just issued, revoked, or of
a user reactivated takes effect at once.
"""

import secrets

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.auth import hash_token
from accounts.models import ApiToken
from accounts.services import api_token_issue, api_token_revoke, user_set_active
from tests.factories import make_token

pytestmark = pytest.mark.django_db

ME = "/api/me"


def made_up() -> str:
    # Shaped like a real token (accounts.auth.TOKEN_SHAPE), so that only a lookup can refuse it.
    return "pb_" + secrets.token_urlsafe(32)


def get_me(raw: str):
    with CaptureQueriesContext(connection) as queries:
        response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(ME)
    return response, len(queries)


def test_a_made_up_token_is_looked_up_once_then_refused_without_a_query():
    raw = made_up()
    first, first_queries = get_me(raw)
    second, second_queries = get_me(raw)
    assert (first.status_code, second.status_code) == (401, 401)
    assert second.json()["code"] == "authentication_failed"
    assert (first_queries, second_queries) == (1, 0)


def test_a_token_not_shaped_like_ours_is_refused_without_a_query():
    response, queries = get_me("pb_not-a-real-token")
    assert response.status_code == 401
    assert queries == 0


def cache_keys() -> list[str]:
    backend = cache._cache  # Redis in CI, the local memory cache elsewhere
    if hasattr(backend, "get_client"):
        return [key.decode() for key in backend.get_client().keys("*")]
    return list(backend)


def test_the_cache_is_keyed_by_the_hash_never_the_token():
    raw = made_up()
    get_me(raw)
    assert cache.get(f"auth:unknown-token:{hash_token(raw)}") == 1
    keys = cache_keys()
    assert keys and not any(raw[3:] in key for key in keys)


def test_a_real_token_still_works_and_is_never_remembered_as_unknown(founder):
    raw = make_token(founder)
    get_me(made_up())
    for _ in range(2):
        response, queries = get_me(raw)
        assert response.status_code == 200
        assert response.json()["email"] == founder.email
        assert queries >= 1  # looked up each time: a revocation must be seen at once


def test_a_newly_issued_token_works_at_once_even_if_it_was_refused_before(
    founder, monkeypatch, django_capture_on_commit_callbacks
):
    # The token the service will draw, shown before it exists (as a guess would be): refused
    # and remembered; issuing it forgets the miss.
    value = secrets.token_urlsafe(32)
    monkeypatch.setattr("accounts.services.secrets.token_urlsafe", lambda n: value)
    raw = "pb_" + value
    assert get_me(raw)[0].status_code == 401
    assert get_me(raw)[1] == 0  # remembered
    with django_capture_on_commit_callbacks(execute=True):
        issued = api_token_issue(user=founder, name="sheet sync")
    assert issued == raw
    response, queries = get_me(raw)
    assert response.status_code == 200
    assert queries >= 1


def test_a_revoked_token_stops_working_at_once(founder):
    raw = make_token(founder)
    assert get_me(raw)[0].status_code == 200
    api_token_revoke(token=ApiToken.objects.get(), actor=founder)
    refused, _ = get_me(raw)
    again, queries = get_me(raw)
    assert (refused.status_code, again.status_code) == (401, 401)
    assert queries == 0  # revoked tokens never come back: remembering them is safe


def test_the_token_of_a_reactivated_user_works_at_once(founder, marketing):
    raw = make_token(marketing)
    user_set_active(user=marketing, actor=founder, active=False)
    assert get_me(raw)[0].status_code == 401
    user_set_active(user=marketing, actor=founder, active=True)
    assert get_me(raw)[0].status_code == 200


def test_with_the_cache_off_every_made_up_token_is_looked_up(settings):
    settings.API_TOKEN_UNKNOWN_CACHE_SECONDS = 0
    raw = made_up()
    assert [get_me(raw)[1] for _ in range(2)] == [1, 1]


@override_settings(
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
)
def test_without_the_cache_tokens_are_looked_up_and_still_work(founder):
    raw = make_token(founder)
    assert get_me(raw)[0].status_code == 200
    made = made_up()
    answers = [get_me(made) for _ in range(2)]
    assert [(response.status_code, queries) for response, queries in answers] == [(401, 1)] * 2
