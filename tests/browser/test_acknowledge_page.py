"""An acknowledge link in a real browser: log in, come back to the link, confirm, see who."""

from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from alerts.models import AlertState, Notification
from alerts.rules import Observation, Rule
from alerts.services import apply_observation
from audit.models import AuditLog
from tests.alerts.conftest import channels, smtp_server, webhooks  # noqa: F401 - local far ends
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_founder_follows_the_link_logs_in_and_acknowledges_with_the_button(
    live_server,
    new_page,
    founder,
    channels,  # noqa: F811
):
    apply_observation(
        rule=Rule("payments_failing", check=lambda now: None),
        observation=Observation(firing=True, title="Payment provider is failing", body="x"),
        now=timezone.now(),
    )
    link = urlsplit(channels["webhooks"].received("/hook")[-1]["ackUrl"]).path
    page = new_page()

    page.goto(live_server.url + link)
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.fill("#id_email", founder.email)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == live_server.url + link
    assert page.get_by_role("heading").inner_text() == "Acknowledge this alert?"
    assert AlertState.objects.get().acknowledged_at is None  # opening it is not acknowledging

    with page.expect_navigation():
        page.get_by_role("button", name="Acknowledge").click()

    assert page.get_by_role("heading").inner_text() == "Acknowledged"
    assert "Acknowledged by Fiona Founder at " in page.inner_text(".ack")
    assert AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED", user_id=founder.pk).count() == 1
    assert Notification.objects.filter(kind="ACKNOWLEDGED", status="SENT").count() == 4
