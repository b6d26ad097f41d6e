import html as html_lib
import json
import re

import pytest

from audit.models import Action

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


def _root(html: str) -> str:
    return re.search(r'<div id="activity"[^>]*>', html).group(0)


def test_the_page_carries_every_action_s_words_from_audit_action(anon_client, founder):
    anon_client.force_login(founder)
    root = _root(anon_client.get(URL).content.decode())
    raw = re.search(r'data-action-labels="([^"]*)"', root).group(1)
    labels = json.loads(html_lib.unescape(raw))
    assert labels == {action.value: action.label for action in Action}
    assert labels["LEAD_TO_STUDENT_CONVERSION"] == "Lead converted to student"


def test_every_action_has_words_of_its_own_not_its_code_title_cased():
    # TextChoices makes "Lead To Student Conversion" of a member without a label.
    for action in Action:
        assert action.label != action.value.replace("_", " ").title(), action.value


def test_the_page_names_the_person_whose_timeline_its_address_asks_for(
    anon_client, founder, marketing
):
    anon_client.force_login(founder)
    root = _root(anon_client.get(f"{URL}?userId={marketing.pk}").content.decode())
    assert 'data-user-label="Manu Marketing"' in root
    assert 'data-export-url="/api/system/audit-logs/export"' in root


@pytest.mark.parametrize("user_id", ["", "0", "abc", "-1", "99999999", str(2**63), "\uff11"])
def test_an_address_with_no_such_person_names_nobody_and_still_answers(
    anon_client, founder, user_id
):
    anon_client.force_login(founder)
    response = anon_client.get(URL, {"userId": user_id})
    assert response.status_code == 200
    assert 'data-user-label=""' in _root(response.content.decode())


def test_a_person_s_name_in_the_heading_is_escaped(anon_client, founder, marketing):
    marketing.name = '"><img src=x>'
    marketing.save(update_fields=["name"])
    anon_client.force_login(founder)
    root = _root(anon_client.get(f"{URL}?userId={marketing.pk}").content.decode())
    assert 'data-user-label="&quot;&gt;&lt;img src=x&gt;"' in root
