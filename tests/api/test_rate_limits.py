"""API rate limits: 429 in the error contract with Retry-After, per token and per address, and
nothing written for a refused request (accounts/throttling.py)."""

from __future__ import annotations

import datetime
import json

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from audit.models import AuditLog
from leads.models import Lead
from tests.factories import make_token

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 2, 10, 0, tzinfo=datetime.UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limits(settings):
    # Generous unless a test lowers one.
    settings.API_RATE_LIMIT_PER_TOKEN = "1000/min"
    settings.API_RATE_LIMIT_PER_ADDRESS = "1000/min"
    settings.API_RATE_LIMIT_PROBES = "1000/min"
    return settings


def _assert_rate_limited(response, retry_after: str) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": "Too many requests; try again in a moment.",
        "code": "rate_limited",
        "details": {},
    }
    assert response["Retry-After"] == retry_after


def test_a_token_over_its_limit_gets_429_with_retry_after(marketing_client, limits, clock):
    limits.API_RATE_LIMIT_PER_TOKEN = "3/min"

    answers = [marketing_client.get("/api/leads").status_code for _ in range(3)]
    refused = marketing_client.get("/api/leads")

    assert answers == [200, 200, 200]
    _assert_rate_limited(refused, "60")
    assert not AuditLog.objects.exists()


def test_the_token_limit_lifts_when_its_window_has_passed(marketing_client, limits, clock):
    limits.API_RATE_LIMIT_PER_TOKEN = "2/min"
    for _ in range(2):
        marketing_client.get("/api/leads")
    assert marketing_client.get("/api/leads").status_code == 429

    clock.shift(datetime.timedelta(seconds=61))

    assert marketing_client.get("/api/leads").status_code == 200


def test_a_throttled_write_writes_nothing(marketing_client, limits, clock):
    limits.API_RATE_LIMIT_PER_TOKEN = "1/min"
    body = json.dumps({"name": "A", "whatsapp": "+919847012345", "source": "OTHER"})
    assert (
        marketing_client.post("/api/leads", body, content_type="application/json").status_code
        == 201
    )
    rows = AuditLog.objects.count()

    refused = marketing_client.post("/api/leads", body, content_type="application/json")

    _assert_rate_limited(refused, "60")
    assert Lead.objects.count() == 1
    assert AuditLog.objects.count() == rows  # no ERROR row, no row at all


def test_each_token_has_its_own_allowance(marketing, founder, limits, clock):
    limits.API_RATE_LIMIT_PER_TOKEN = "1/min"
    first = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(marketing)}")
    second = Client(HTTP_AUTHORIZATION=f"Bearer {make_token(marketing)}")

    assert first.get("/api/leads").status_code == 200
    assert first.get("/api/leads").status_code == 429
    assert second.get("/api/leads").status_code == 200


def test_a_session_user_is_limited_like_a_token(founder, limits, clock):
    limits.API_RATE_LIMIT_PER_TOKEN = "1/min"
    browser = Client()
    browser.force_login(founder)

    assert browser.get("/api/leads").status_code == 200
    _assert_rate_limited(browser.get("/api/leads"), "60")


@pytest.mark.parametrize(
    ("persona_client", "first"),
    [("anonymous", 401), ("teacher", 403), ("marketing", 200), ("founder", 200)],
    indirect=["persona_client"],
)
def test_one_address_over_its_limit_gets_429_whoever_it_is(persona_client, first, limits, clock):
    # Counted before authentication: 401s, 403s and unknown paths spend the allowance too.
    limits.API_RATE_LIMIT_PER_ADDRESS = "3/min"

    answers = [
        persona_client.get("/api/leads").status_code,
        persona_client.get("/api/no-such-thing").status_code,
        persona_client.get("/api/leads").status_code,
    ]
    refused = persona_client.get("/api/leads")

    assert answers == [first, 404, first]
    _assert_rate_limited(refused, "60")
    assert not AuditLog.objects.exists()


def test_another_address_is_not_held_back(limits, clock):
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"
    noisy, quiet = Client(REMOTE_ADDR="203.0.113.7"), Client(REMOTE_ADDR="203.0.113.8")

    noisy.get("/api/leads")

    assert noisy.get("/api/leads").status_code == 429
    assert quiet.get("/api/leads").status_code == 401


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(limits, clock):
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"
    limits.TRUSTED_PROXY_COUNT = 0
    client = Client(REMOTE_ADDR="203.0.113.7")

    client.get("/api/leads", HTTP_X_FORWARDED_FOR="198.51.100.1")

    assert client.get("/api/leads", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 429


def test_behind_a_trusted_proxy_each_client_address_counts_separately(limits, clock):
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"
    limits.TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")

    assert proxy.get("/api/leads", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 401
    assert proxy.get("/api/leads", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 401
    assert proxy.get("/api/leads", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429


def test_livez_is_never_limited(anon_client, limits, clock):
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"
    limits.API_RATE_LIMIT_PROBES = "1/min"

    assert [anon_client.get("/api/system/livez").status_code for _ in range(5)] == [200] * 5


@pytest.mark.parametrize("path", ["/api/system/readyz", "/api/system/health"])
def test_probes_have_their_own_limit_apart_from_the_api(anon_client, limits, clock, path):
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"
    limits.API_RATE_LIMIT_PROBES = "2/min"
    anon_client.get("/api/leads")
    assert anon_client.get("/api/leads").status_code == 429

    answers = [anon_client.get(path).status_code for _ in range(2)]
    refused = anon_client.get(path)

    assert answers == [200, 200]
    _assert_rate_limited(refused, "60")


def test_the_login_page_is_not_under_the_api_limits(anon_client, limits, clock):
    # Failed logins are django-axes' (lockout per account and address); the API limits do not
    # apply to the page, so an API flood cannot lock staff out of signing in.
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"
    anon_client.get("/api/leads")
    assert anon_client.get("/api/leads").status_code == 429

    assert anon_client.get("/accounts/login/").status_code == 200


def test_without_the_cache_requests_are_let_through(marketing_client, limits, clock, settings):
    # Nothing listens on port 1: every cache call fails at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    limits.API_RATE_LIMIT_PER_TOKEN = "1/min"
    limits.API_RATE_LIMIT_PER_ADDRESS = "1/min"

    answers = [marketing_client.get("/api/leads").status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize("value", ["120", "fast", "0/min", "10/week", "-1/s"])
def test_a_malformed_rate_in_the_environment_stops_the_start(monkeypatch, value):
    from planbeta.settings import _rate

    monkeypatch.setenv("API_RATE_LIMIT_PER_TOKEN", value)
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT_PER_TOKEN"):
        _rate("API_RATE_LIMIT_PER_TOKEN", "120/min")


@pytest.mark.parametrize(("value", "rate"), [("30/s", "30/s"), ("", ""), ("500/hour", "500/hour")])
def test_a_rate_from_the_environment_is_taken(monkeypatch, value, rate):
    from planbeta.settings import _rate

    monkeypatch.setenv("API_RATE_LIMIT_PER_TOKEN", value)
    assert _rate("API_RATE_LIMIT_PER_TOKEN", "120/min") == rate
