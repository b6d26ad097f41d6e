"""Acknowledge links: signed, expiring, single-use; a founder confirms with a POST."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from alerts.acks import alert_acknowledge
from alerts.channels import EMAIL
from alerts.models import AlertState, Notification
from alerts.rules import Observation, Rule
from alerts.services import apply_observation
from alerts.tokens import SALT
from audit.models import AuditLog
from tests.conftest import PASSWORD
from tests.html_forms import read_post_form

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RULE = Rule("payments_failing", check=lambda now: None)
FAILING = Observation(
    firing=True,
    title="Payment provider is failing",
    body="3 payments failed in a row.",
    facts={"errors": 3},
    severity="critical",
)
CLEAR = Observation(firing=False, title="Payment provider is answering")


@pytest.fixture
def observe(django_capture_on_commit_callbacks, time_machine):
    """Move the clock to `at` and apply an observation, delivering what it queues."""

    def observe(at: datetime, observation: Observation = FAILING, rule: Rule = RULE) -> list:
        time_machine.move_to(at, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            ids = apply_observation(rule=rule, observation=observation, now=timezone.now())
        return sorted(Notification.objects.filter(pk__in=ids).values_list("kind", "channel"))

    return observe


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """POST the page's own form, as the browser would, delivering what the request queues."""

    def post(client: Client, path: str):
        page = client.get(path)
        fields, _ = read_post_form(page.text, having="csrfmiddlewaretoken")
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path, {"csrfmiddlewaretoken": fields["csrfmiddlewaretoken"]})

    return post


def latest_link(channels, path: str = "/hook") -> str:
    """The acknowledge link of the latest message the generic webhook received, as a path."""
    return urlsplit(channels["webhooks"].received(path)[-1]["ackUrl"]).path


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def chat_titles(channels) -> list[str]:
    webhooks = channels["webhooks"]
    return [
        webhooks.received("/slack")[-1]["text"],
        webhooks.received("/discord")[-1]["content"],
        webhooks.received("/hook")[-1]["title"],
    ]


@pytest.mark.django_db
def test_founder_opens_the_link_confirms_and_every_channel_hears_who_acknowledged(
    channels, observe, founder, post
):
    observe(T0)
    link = latest_link(channels)
    assert link.startswith("/alerts/ack/")
    client = logged_in(founder)

    # Opening the link (or a chat app fetching it for a preview) acknowledges nothing.
    page = client.get(link)
    assert page.status_code == 200
    assert "Acknowledge this alert?" in page.text
    assert "Payment provider is failing" in page.text
    assert AlertState.objects.get().acknowledged_at is None
    assert not AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED").exists()

    response = post(client, link)

    assert (response.status_code, response["Location"]) == (302, link)
    state = AlertState.objects.get()
    assert (state.acknowledged_at, state.acknowledged_by) == (T0, founder)
    audit = AuditLog.objects.get(action="ALERT_ACKNOWLEDGED")
    assert (audit.user_email, audit.entity_type, audit.entity_id) == (
        "founder@example.com",
        "AlertState",
        str(state.pk),
    )
    assert audit.metadata["fingerprint"] == "payments_failing"
    assert sorted(
        Notification.objects.filter(kind="ACKNOWLEDGED").values_list("channel", "status")
    ) == [("discord", "SENT"), ("email", "SENT"), ("json", "SENT"), ("slack", "SENT")]
    assert (
        chat_titles(channels) == ["Acknowledged by Fiona Founder: Payment provider is failing"] * 3
    )
    assert "Fiona Founder is on it." in channels["mail"].messages[-1]["data"]
    # The founder's name, nothing else about them, and no new link to acknowledge with.
    assert "founder@example.com" not in json.dumps(channels["webhooks"].requests[-3:])
    assert channels["webhooks"].received("/hook")[-1]["ackUrl"] is None

    done = client.get(link)
    assert done.status_code == 200
    assert "Acknowledged by Fiona Founder at 20 Nov 2026, 15:30 IST." in done.text
    assert '<form method="post">' not in done.text


@pytest.mark.django_db
def test_a_reused_link_says_who_acknowledged_and_acknowledges_nothing_again(
    channels, observe, founder, post, make_founder
):
    observe(T0)
    email_link = latest_link(channels)
    [slack] = channels["webhooks"].received("/slack")
    assert email_link in slack["blocks"][0]["text"]["text"]  # one link for all the channels
    post(logged_in(founder), email_link)
    sent_before = len(channels["webhooks"].requests), len(channels["mail"].messages)

    again = post(logged_in(founder), email_link)
    other = post(logged_in(make_founder("ravi@example.com", "Ravi Founder")), email_link)

    for response in (again, other):
        assert response.status_code == 409
        assert "Acknowledged by Fiona Founder at 20 Nov 2026, 15:30 IST." in response.text
    assert AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED").count() == 1
    assert Notification.objects.filter(kind="ACKNOWLEDGED").count() == 4
    assert (len(channels["webhooks"].requests), len(channels["mail"].messages)) == sent_before
    assert AlertState.objects.get().acknowledged_by == founder


@pytest.mark.django_db
def test_an_expired_link_shows_a_clear_page_and_acknowledges_nothing(
    channels, observe, founder, settings, time_machine, post
):
    settings.ALERT_ACK_LINK_HOURS = 2
    observe(T0)
    link = latest_link(channels)
    client = logged_in(founder)

    time_machine.move_to(T0 + timedelta(hours=2, seconds=-1), tick=False)
    assert client.get(link).status_code == 200
    time_machine.move_to(T0 + timedelta(hours=2, seconds=1), tick=False)
    page = client.get(link)
    # The form of an expired link has no acknowledge button; a POST made anyway is refused.
    response = client.post(link, {"csrfmiddlewaretoken": _csrf(page.text)})

    assert page.status_code == response.status_code == 410
    assert "Link expired" in page.text and "valid for 2 hours" in page.text
    assert AlertState.objects.get().acknowledged_at is None
    assert not AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED").exists()
    assert not Notification.objects.filter(kind="ACKNOWLEDGED").exists()


@pytest.mark.django_db
def test_forged_or_tampered_links_are_refused_and_change_nothing(channels, observe, founder):
    observe(T0)
    link = latest_link(channels)
    token = link.rsplit("/", 1)[1]
    payload, stamp, signature = token.split(":")
    other_payload = signing.b64_encode(b'{"f":"health_unhealthy","v":1}').decode()
    client = logged_in(founder)

    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    later = signing.b62_encode(int(T0.timestamp()) + 9999)
    refused = {
        "flipped signature": f"{payload}:{stamp}:{flipped}",
        "other alert": f"{other_payload}:{stamp}:{signature}",
        "later timestamp": f"{payload}:{later}:{signature}",
        "no signature": f"{payload}:{stamp}",
        "another salt": signing.TimestampSigner(salt="elsewhere").sign_object(
            {"f": "payments_failing", "v": 1}
        ),
        "not a number": signing.TimestampSigner(salt=SALT).sign_object(
            {"f": "payments_failing", "v": "1"}
        ),
    }
    for name, forged in refused.items():
        response = client.get(f"/alerts/ack/{forged}")
        assert response.status_code == 400, name
        assert "Invalid link" in response.text
    assert client.get("/alerts/ack/" + "%F0%9F%92%A5" + token).status_code == 404
    assert client.get("/alerts/ack/" + token + "x" * 600).status_code == 404
    unknown = signing.TimestampSigner(salt=SALT).sign_object({"f": "no_such_alert", "v": 1})
    assert client.get(f"/alerts/ack/{unknown}").status_code == 404
    assert AlertState.objects.get().acknowledged_at is None
    assert not AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["marketing", "teacher"])
def test_staff_other_than_founders_get_403_and_acknowledge_nothing(
    channels, observe, request, role
):
    observe(T0)
    link = latest_link(channels)
    client = Client()  # no CSRF check: even a well-formed POST is refused for the role
    client.force_login(request.getfixturevalue(role))

    assert client.get(link).status_code == 403
    assert client.post(link).status_code == 403
    assert AlertState.objects.get().acknowledged_at is None
    assert not Notification.objects.filter(kind="ACKNOWLEDGED").exists()


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_log_in_and_then_back_to_the_link(channels, observe, founder):
    observe(T0)
    link = latest_link(channels)
    client = Client()

    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={link.replace(':', '%3A')}"
    assert client.post(link).status_code == 302  # nor can it acknowledge without logging in
    assert AlertState.objects.get().acknowledged_at is None

    logged = client.post(
        "/accounts/login/", {"email": founder.email, "password": PASSWORD, "next": link}
    )
    assert (logged.status_code, logged["Location"]) == (302, link)
    assert "Acknowledge this alert?" in client.get(link).text


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_refused(channels, observe, founder):
    observe(T0)
    link = latest_link(channels)

    response = logged_in(founder).post(link)

    assert response.status_code == 403
    assert AlertState.objects.get().acknowledged_at is None


@pytest.mark.django_db
def test_an_acknowledged_alert_does_not_repeat_until_the_pause_lapses(
    channels, observe, founder, post, settings
):
    settings.ALERT_ACK_HOURS = 8
    observe(T0)
    first_link = latest_link(channels)
    post(logged_in(founder), first_link)

    assert observe(T0 + timedelta(hours=4)) == []  # the repeat that was due
    assert observe(T0 + timedelta(hours=7, minutes=59)) == []
    repeat = observe(T0 + timedelta(hours=8))

    assert ("REPEAT", "slack") in repeat
    [row] = Notification.objects.filter(kind="REPEAT", channel="json")
    assert row.facts["acknowledgedBy"] == "Fiona Founder"
    assert observe(T0 + timedelta(hours=9)) == []  # the repeat interval counts again
    # The repeat carries a new link; the spent one stays spent.
    fresh_link = latest_link(channels)
    assert fresh_link != first_link
    stale = logged_in(founder).get(first_link)
    assert "Link already used" in stale.text
    assert post(logged_in(founder), first_link).status_code == 409
    assert post(logged_in(founder), fresh_link).status_code == 302
    assert AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED").count() == 2


@pytest.mark.django_db
def test_an_acknowledgement_ends_when_the_alert_resolves(channels, observe, founder, post):
    observe(T0)
    first_link = latest_link(channels)
    post(logged_in(founder), first_link)

    observe(T0 + timedelta(hours=1), CLEAR)
    assert observe(T0 + timedelta(hours=1, minutes=5), CLEAR) == [
        ("RESOLVED", "discord"),
        ("RESOLVED", "email"),
        ("RESOLVED", "json"),
        ("RESOLVED", "slack"),
    ]
    resolved_page = logged_in(founder).get(first_link)
    assert "has resolved; there is nothing to acknowledge" in resolved_page.text

    # It fires again: a new firing, not acknowledged, whose old link belongs to the last one.
    assert ("FIRING", "slack") in observe(T0 + timedelta(hours=2))
    state = AlertState.objects.get()
    assert (state.acknowledged_at, state.acknowledged_by) == (None, None)
    assert "belongs to an earlier firing" in logged_in(founder).get(first_link).text
    assert post(logged_in(founder), first_link).status_code == 409
    assert post(logged_in(founder), latest_link(channels)).status_code == 302


@pytest.mark.django_db
def test_acknowledged_by_goes_to_the_channels_that_received_the_alert_only(
    channels, observe, founder, post
):
    observe(T0, rule=Rule("slow_thing", check=lambda now: None, channels=(EMAIL,)))
    [mail] = channels["mail"].messages
    link = next(
        line.split(": ", 1)[1]
        for line in mail["data"].splitlines()
        if line.startswith("Acknowledge (founders): ")
    )

    post(logged_in(founder), urlsplit(link).path)

    assert list(
        Notification.objects.filter(kind="ACKNOWLEDGED").values_list("channel", flat=True)
    ) == ["email"]
    assert channels["webhooks"].requests == []
    assert "Fiona Founder is on it." in channels["mail"].messages[-1]["data"]


@pytest.mark.django_db
def test_a_founder_whose_link_expired_acknowledges_from_the_admin(
    channels, observe, founder, settings, time_machine, django_capture_on_commit_callbacks
):
    settings.ALERT_ACK_LINK_HOURS = 1
    observe(T0)
    time_machine.move_to(T0 + timedelta(hours=2), tick=False)
    client = Client()
    client.force_login(founder)
    state = AlertState.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/alerts/alertstate/", {"action": "acknowledge", "_selected_action": [state.pk]}
        )

    assert response.status_code == 302
    state.refresh_from_db()
    assert (state.acknowledged_at, state.acknowledged_by) == (T0 + timedelta(hours=2), founder)
    assert AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED", user_id=founder.pk).count() == 1
    assert Notification.objects.filter(kind="ACKNOWLEDGED", status="SENT").count() == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_founders_acknowledging_at_once_make_one_acknowledgement(
    channels, observe, founder, make_founder, time_machine
):
    from tests.concurrency import run_concurrently

    observe(T0)
    others = [make_founder(f"f{i}@example.com", f"Founder {i}") for i in range(5)]

    results = run_concurrently(
        [
            lambda user=user: (
                alert_acknowledge(
                    fingerprint="payments_failing", version=1, actor=user
                ).acknowledged
            )
            for user in [founder, *others]
        ]
    )

    assert sorted(results) == [False] * 5 + [True]
    assert AuditLog.objects.filter(action="ALERT_ACKNOWLEDGED").count() == 1
    assert Notification.objects.filter(kind="ACKNOWLEDGED").count() == 4


@pytest.fixture
def make_founder(db):
    from accounts.models import Role
    from tests.factories import make_user

    def make(email: str, name: str):
        return make_user(email=email, name=name, role=Role.FOUNDER)

    return make


def _csrf(html: str) -> str:
    fields, _ = read_post_form(html, having="csrfmiddlewaretoken")
    return fields["csrfmiddlewaretoken"]
