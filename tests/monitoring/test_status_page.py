"""/status: the founders' page with each check's state, value, threshold and since when."""

import html as html_text
import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from monitoring.checks import reset_health_cache
from monitoring.models import CheckChange, CheckState

pytestmark = pytest.mark.django_db

URL = "/status"


def _row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="check-{name}">(.*?)</tr>', html, re.S)
    assert match, name
    return _text(match.group(1))


def _text(html: str) -> str:
    return html_text.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def test_anonymous_is_sent_to_the_login_page(anon_client):
    response = anon_client.get(URL)
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/status")


@pytest.mark.parametrize("persona", ["teacher", "marketing"])
def test_staff_who_are_not_founders_are_refused_and_nothing_is_recorded(
    anon_client, request, persona
):
    anon_client.force_login(request.getfixturevalue(persona))
    assert anon_client.get(URL).status_code == 403
    assert not CheckState.objects.exists()


def test_a_post_changes_nothing(anon_client, founder):
    anon_client.force_login(founder)
    assert anon_client.post(URL).status_code == 405
    assert not CheckState.objects.exists()


def test_founders_see_each_check_with_state_value_threshold_and_since(
    anon_client, founder, settings, audit_rows
):
    settings.HEALTH_DB_SLOW_MS = 1000
    start = timezone.now().replace(microsecond=0)
    anon_client.force_login(founder)
    with time_machine.travel(start, tick=False) as clock:
        assert anon_client.get(URL).status_code == 200  # records the first states
        clock.shift(timedelta(minutes=7))
        reset_health_cache()
        audit_rows(action="LEAD_TO_STUDENT_CONVERSION", CRITICAL=2)
        response = anon_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    first_seen = timezone.localtime(start).strftime("%-d %b %Y, %H:%M IST")
    later = timezone.localtime(start + timedelta(minutes=7)).strftime("%-d %b %Y, %H:%M IST")
    assert _row(html, "database") == (
        "Database connection · money Healthy Database connection OK "
        f"answers SELECT 1 within 1000 ms, else unhealthy {first_seen}"
    )
    assert _row(html, "databasePerformance").startswith("Database speed Healthy ")
    assert "degraded above 1000 ms" in _row(html, "databasePerformance")
    assert _row(html, "moneyOperations") == (
        "Money operations · money Unhealthy 2 failed, 2 in a row (last 60 minutes) "
        "degraded on any failure; unhealthy after 2 in a row (money report; the site's report "
        f"says degraded) {later}"
    )
    assert _row(html, "errorRate") == (
        "Error rate Healthy 100.0% (2 of 2 events, last 1 hour) degraded above 5 % "
        f"(judged from 20 events) {first_seen}"
    )
    # Both reports: the site is up (degraded), money is not.
    text = _text(html)
    assert "The site Degraded /api/system/health answers HTTP 200" in text
    assert "Money operations Unhealthy /api/system/health/money answers HTTP 503" in text
    assert f"{later} Money operations : healthy → unhealthy" in text
    assert CheckChange.objects.filter(name="moneyOperations").count() == 2


def test_the_page_uses_the_layout_without_inline_script(anon_client, founder):
    anon_client.force_login(founder)
    html = anon_client.get(URL).content.decode()
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html
    assert 'aria-current="page">Status</a>' in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


def test_every_check_of_the_report_has_a_name_in_words(anon_client, founder):
    from monitoring.checks import health_report
    from monitoring.status import LABELS

    assert set(health_report().results) <= set(LABELS)


def test_the_audit_chain_and_the_reconciliation_read_as_words(anon_client, founder, settings):
    from audit.chain import Verification, record_verification
    from monitoring.reconciliation import reconcile_and_record

    settings.HEALTH_EXPECT_HEARTBEAT = True
    moment = timezone.now().replace(second=0, microsecond=0)
    with time_machine.travel(moment, tick=False):
        record_verification(Verification(checked=1204, head_seq=1204), runner="beat")
        reconcile_and_record()
    anon_client.force_login(founder)

    html = anon_client.get(URL).content.decode()

    shown = timezone.localtime(moment).strftime("%-d %b %Y, %H:%M IST")
    # (then the "since" column: when this page first recorded the state)
    assert _row(html, "auditChain").startswith(
        f"Audit chain Healthy Intact: 1,204 seals checked {shown} by beat "
        "unhealthy when broken; degraded when not verified for 7800 s "
    )
    row = _row(html, "reconciliation")
    assert row.startswith(
        f"Money reconciled Healthy Books and trail agree, checked {shown} by system (audit row "
    )
    assert ") unhealthy on any mismatch; degraded when not run for 10800 s " in row
    assert "auditChain" not in _text(html) and "reconciliation" not in _text(html)


def test_a_broken_chain_names_the_row_in_words(anon_client, founder):
    from audit.chain import Verification, record_verification

    broken = Verification(checked=10)
    broken.broken(812, "row 812 (seal 790) was changed, or its seal forged")
    record_verification(broken, runner="command")
    anon_client.force_login(founder)

    row = _row(anon_client.get(URL).content.decode(), "auditChain")

    assert row.startswith("Audit chain Unhealthy Broken at row 812, found ")
    assert " by command unhealthy when broken" in row
