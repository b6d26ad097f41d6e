import re

import pytest

pytestmark = pytest.mark.django_db

URL = "/dashboard/activity"


def test_anonymous_is_sent_to_the_login_page(anon_client):
    response = anon_client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/dashboard/activity"


@pytest.mark.parametrize("persona", ["teacher", "marketing"])
def test_staff_who_are_not_founders_are_refused(anon_client, request, persona):
    anon_client.force_login(request.getfixturevalue(persona))
    assert anon_client.get(URL).status_code == 403


def test_founder_gets_the_page_with_its_api_and_poll_interval(anon_client, founder, settings):
    settings.ACTIVITY_POLL_SECONDS = 10
    anon_client.force_login(founder)
    response = anon_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-api-url="/api/system/audit-logs"' in html
    assert 'data-poll-ms="10000"' in html
    assert '<script src="/static/js/activity.js" defer></script>' in html


def test_page_has_no_inline_script_and_a_strict_policy(anon_client, founder):
    anon_client.force_login(founder)
    response = anon_client.get(URL)
    html = response.content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert not re.search(r"<[^>]+\son[a-z]+=", html)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "object-src 'none'" in policy


def test_nav_links_to_the_dashboard_for_founders_only(anon_client, founder, marketing):
    anon_client.force_login(founder)
    assert 'href="/dashboard/activity"' in anon_client.get("/").content.decode()
    anon_client.force_login(marketing)
    assert 'href="/dashboard/activity"' not in anon_client.get("/").content.decode()


def test_founders_are_told_on_the_page_when_no_alert_channel_is_configured(
    anon_client, founder, settings
):
    anon_client.force_login(founder)
    assert b'id="no-alert-channel"' not in anon_client.get(URL).content

    settings.FOUNDER_ALERT_EMAILS = []
    settings.ALERT_WEBHOOK_URLS = []
    html = anon_client.get(URL).content.decode()

    assert (
        '<p class="notice warning" role="alert" id="no-alert-channel">No alert channel '
        "configured: alerts are recorded but reach nobody. Set FOUNDER_ALERT_EMAILS or "
        "ALERT_WEBHOOK_URLS (or both).</p>"
    ) in html
