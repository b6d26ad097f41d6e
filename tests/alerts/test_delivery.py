"""Outbox delivery to real local far ends: formats, retries, Retry-After, permanent failures."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from alerts.channels import DISCORD, EMAIL, JSON, SLACK, parse_webhook_url
from alerts.delivery import backoff_seconds, sweep_outbox
from alerts.models import Notification
from alerts.rules import Observation, Rule
from alerts.services import apply_observation
from alerts.tokens import ack_url
from tests.alerts.conftest import Reply, free_port

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def fire(django_capture_on_commit_callbacks):
    def fire(*, channels=(), title="Payment provider is failing"):
        rule = Rule("test_rule", check=lambda now: None, channels=channels)
        observation = Observation(
            firing=True,
            title=title,
            body="3 payments failed in a row.",
            facts={"errors": 3, "period": "last 1 hour"},
            severity="critical",
        )
        with django_capture_on_commit_callbacks(execute=True):
            return apply_observation(rule=rule, observation=observation, now=timezone.now())

    return fire


def _row(channel: str) -> Notification:
    return Notification.objects.get(channel=channel)


@pytest.mark.django_db
def test_one_alert_is_delivered_once_to_email_slack_discord_and_the_generic_webhook(
    channels, fire, time_machine
):
    time_machine.move_to(T0, tick=False)
    webhooks, mail = channels["webhooks"], channels["mail"]

    fire()

    assert sorted(Notification.objects.values_list("channel", "status", "attempts")) == [
        ("discord", "SENT", 1),
        ("email", "SENT", 1),
        ("json", "SENT", 1),
        ("slack", "SENT", 1),
    ]
    assert set(Notification.objects.values_list("sent_at", flat=True)) == {T0}
    # Signed when sent, at T0 (the clock stands still): the same link in every message.
    ack = ack_url("test_rule", 1)
    assert ack.startswith("https://office.planbeta.example/alerts/ack/")
    [slack] = webhooks.received("/slack")
    assert slack["text"] == "Payment provider is failing"
    assert slack["blocks"][0]["text"]["text"] == (
        "*Payment provider is failing*\n3 payments failed in a row.\nerrors: 3\n"
        f"period: last 1 hour\n<{ack}|Acknowledge>\n"
        "<https://office.planbeta.example/admin/alerts/alertstate/|Open>"
    )
    [discord] = webhooks.received("/discord")
    assert discord["content"] == "Payment provider is failing"
    assert discord["allowed_mentions"] == {"parse": []}
    assert discord["embeds"][0]["description"] == (
        f"3 payments failed in a row.\nerrors: 3\nperiod: last 1 hour\n[Acknowledge]({ack})"
    )
    assert discord["embeds"][0]["color"] == 0xC0392B
    [generic] = webhooks.received("/hook")
    assert {k: generic[k] for k in ("status", "kind", "rule", "severity", "title", "facts")} == {
        "status": "firing",
        "kind": "FIRING",
        "rule": "test_rule",
        "severity": "critical",
        "title": "Payment provider is failing",
        "facts": {"errors": 3, "period": "last 1 hour"},
    }
    assert generic["createdAt"] == "2026-11-20T10:00:00+00:00"
    assert generic["ackUrl"] == ack
    [message] = mail.messages
    assert message["to"] == ["founder@planbeta.example", "cofounder@planbeta.example"]
    assert "Subject: [Plan Beta CRITICAL] Payment provider is failing" in message["data"]
    assert "errors: 3" in message["data"]
    assert f"Acknowledge (founders): {ack}" in message["data"]

    # Sweeping again sends nothing twice.
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    assert sweep_outbox() == 0
    assert len(webhooks.requests) == 3 and len(mail.messages) == 1


@pytest.mark.django_db
def test_server_error_is_retried_with_exponential_backoff_until_it_succeeds(
    channels, fire, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    webhooks = channels["webhooks"]
    settings.ALERT_WEBHOOK_URLS = [
        "slack+" + webhooks.script("/slack", Reply(500, b"rollup_error"), Reply(503, b""), Reply())
    ]

    fire(channels=(SLACK,))
    first = _row(SLACK)
    assert (first.status, first.attempts, first.last_error) == (
        "PENDING",
        1,
        "HTTP 500: rollup_error",
    )
    assert first.next_attempt_at == T0 + timedelta(seconds=30)

    time_machine.move_to(T0 + timedelta(seconds=29), tick=False)
    assert sweep_outbox() == 0  # not due yet
    time_machine.move_to(T0 + timedelta(seconds=30), tick=False)
    sweep_outbox()
    second = _row(SLACK)
    assert (second.status, second.attempts, second.last_error) == ("PENDING", 2, "HTTP 503:")
    assert second.next_attempt_at == T0 + timedelta(seconds=30 + 60)

    time_machine.move_to(T0 + timedelta(seconds=90), tick=False)
    sweep_outbox()
    done = _row(SLACK)
    assert (done.status, done.attempts, done.last_error) == ("SENT", 3, "")
    assert done.sent_at == T0 + timedelta(seconds=90)
    assert len(webhooks.received("/slack")) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [("315360000", 3600), ("1e12", 3600), ("inf", 30), ("nan", 30), ("-5", 0)],
)
def test_a_retry_after_beyond_reason_is_capped_and_the_row_stays_deliverable(
    channels, fire, settings, time_machine, retry_after, expected_wait
):
    time_machine.move_to(T0, tick=False)
    webhooks = channels["webhooks"]
    settings.ALERT_WEBHOOK_URLS = [
        "json+"
        + webhooks.script(
            "/hook", Reply(429, b"slow down", headers={"Retry-After": retry_after}), Reply(200, b"")
        )
    ]

    fire(channels=(JSON,))

    row = _row(JSON)
    assert (row.status, row.next_attempt_at) == ("PENDING", T0 + timedelta(seconds=expected_wait))
    time_machine.move_to(T0 + timedelta(seconds=expected_wait), tick=False)
    sweep_outbox()
    assert _row(JSON).status == "SENT"


@pytest.mark.django_db
def test_rate_limited_delivery_waits_for_retry_after(channels, fire, settings, time_machine):
    time_machine.move_to(T0, tick=False)
    webhooks = channels["webhooks"]
    settings.ALERT_WEBHOOK_URLS = [
        "discord+"
        + webhooks.script(
            "/discord",
            Reply(429, b'{"retry_after": 120.0}', headers={"Retry-After": "120"}),
            Reply(204, b""),
        )
    ]

    fire(channels=(DISCORD,))
    row = _row(DISCORD)
    assert (row.status, row.next_attempt_at) == ("PENDING", T0 + timedelta(seconds=120))
    assert row.last_error.startswith("HTTP 429")

    time_machine.move_to(T0 + timedelta(seconds=90), tick=False)
    sweep_outbox()
    assert len(webhooks.received("/discord")) == 1  # honoured: nothing sent before 120 s

    time_machine.move_to(T0 + timedelta(seconds=120), tick=False)
    sweep_outbox()
    assert _row(DISCORD).status == "SENT"
    assert len(webhooks.received("/discord")) == 2


@pytest.mark.django_db
def test_permanent_client_error_gives_up_at_once_and_records_the_reason(
    channels, fire, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    webhooks = channels["webhooks"]
    settings.ALERT_WEBHOOK_URLS = [
        "json+" + webhooks.script("/hook", Reply(404, b"channel_not_found"))
    ]

    fire(channels=(JSON,))

    row = _row(JSON)
    assert (row.status, row.attempts, row.last_error) == (
        "FAILED",
        1,
        "HTTP 404: channel_not_found",
    )
    assert row.sent_at is None
    time_machine.move_to(T0 + timedelta(days=1), tick=False)
    assert sweep_outbox() == 0
    assert len(webhooks.received("/hook")) == 1


@pytest.mark.django_db
def test_slow_webhook_times_out_and_is_retried(channels, fire, settings, time_machine):
    time_machine.move_to(T0, tick=False)
    webhooks = channels["webhooks"]
    # A 1 s timeout: long enough that the prompt second reply never trips it on a busy machine,
    # and the first reply comes far later.
    settings.ALERT_WEBHOOK_TIMEOUT = 1.0
    settings.ALERT_WEBHOOK_URLS = [
        "json+" + webhooks.script("/hook", Reply(200, b"{}", delay=5.0), Reply(200, b"{}"))
    ]

    fire(channels=(JSON,))
    row = _row(JSON)
    assert (row.status, row.last_error, row.next_attempt_at) == (
        "PENDING",
        "timed out",
        T0 + timedelta(seconds=30),
    )

    time_machine.move_to(T0 + timedelta(seconds=30), tick=False)
    sweep_outbox()
    assert _row(JSON).status == "SENT"


@pytest.mark.django_db
def test_mail_server_down_loses_nothing_and_mail_goes_out_when_it_returns(
    channels, fire, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    mail = channels["mail"]
    live_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()  # nobody listens: the mail server is down

    fire(channels=(EMAIL,))
    row = _row(EMAIL)
    assert row.status == "PENDING"
    assert row.last_error.startswith("SMTP unavailable: ConnectionRefusedError")
    assert mail.messages == []

    settings.EMAIL_PORT = live_port
    time_machine.move_to(T0 + timedelta(seconds=30), tick=False)
    sweep_outbox()
    assert _row(EMAIL).status == "SENT"
    assert len(mail.messages) == 1


@pytest.mark.django_db
def test_mail_refused_by_the_server_for_good_is_given_up_with_the_reason(
    channels, fire, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    channels["mail"].refuse = set(settings.FOUNDER_ALERT_EMAILS)

    fire(channels=(EMAIL,))

    row = _row(EMAIL)
    assert (row.status, row.attempts) == ("FAILED", 1)
    assert row.last_error.startswith("recipients refused: {'founder@planbeta.example': (550,")
    assert channels["mail"].messages == []


@pytest.mark.django_db
def test_mail_the_server_asks_to_send_later_is_retried_and_then_sent(channels, fire, time_machine):
    time_machine.move_to(T0, tick=False)
    mail = channels["mail"]
    mail.data_reply = "451 4.3.0 Local error, try again later"

    fire(channels=(EMAIL,))

    row = _row(EMAIL)
    assert (row.status, row.attempts, row.last_error) == (
        "PENDING",
        1,
        "SMTP 451: 4.3.0 Local error, try again later",
    )
    assert mail.messages == []

    mail.data_reply = ""
    time_machine.move_to(T0 + timedelta(seconds=30), tick=False)
    sweep_outbox()
    assert (_row(EMAIL).status, _row(EMAIL).attempts) == ("SENT", 2)
    assert len(mail.messages) == 1


@pytest.mark.django_db
def test_mail_to_greylisted_recipients_is_retried_not_given_up(channels, fire, time_machine):
    time_machine.move_to(T0, tick=False)
    channels["mail"].rcpt_reply = "450 4.2.0 Greylisted, please try again later"

    fire(channels=(EMAIL,))

    row = _row(EMAIL)
    assert (row.status, row.attempts) == ("PENDING", 1)
    assert row.last_error.startswith("recipients refused: {'founder@planbeta.example': (450,")
    assert channels["mail"].messages == []


@pytest.mark.django_db
def test_mail_the_server_rejects_with_a_5xx_is_given_up_at_once(channels, fire, time_machine):
    time_machine.move_to(T0, tick=False)
    channels["mail"].data_reply = "554 5.7.1 Message rejected as spam"

    fire(channels=(EMAIL,))

    row = _row(EMAIL)
    assert (row.status, row.attempts, row.last_error) == (
        "FAILED",
        1,
        "SMTP 554: 5.7.1 Message rejected as spam",
    )
    assert channels["mail"].messages == []


@pytest.mark.django_db
def test_a_channel_removed_from_the_configuration_fails_without_sending(
    channels, fire, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    settings.ALERT_WEBHOOK_URLS = ["json+" + channels["webhooks"].script("/hook", Reply(500))]
    fire(channels=(JSON,))
    settings.ALERT_WEBHOOK_URLS = []

    time_machine.move_to(T0 + timedelta(minutes=1), tick=False)
    sweep_outbox()

    row = _row(JSON)
    assert (row.status, row.last_error) == ("FAILED", "channel is no longer configured")
    assert len(channels["webhooks"].received("/hook")) == 1


@pytest.mark.django_db
def test_transient_failures_give_up_after_the_configured_age(
    channels, fire, settings, time_machine
):
    time_machine.move_to(T0, tick=False)
    settings.ALERT_GIVE_UP_HOURS = 1
    settings.ALERT_WEBHOOK_URLS = ["json+" + channels["webhooks"].script("/hook", Reply(502))]

    fire(channels=(JSON,))
    time_machine.move_to(T0 + timedelta(minutes=61), tick=False)
    sweep_outbox()

    row = _row(JSON)
    assert (row.status, row.attempts, row.last_error) == ("FAILED", 2, "HTTP 502: ok")


@pytest.mark.django_db
def test_a_row_whose_sender_died_mid_send_is_handed_out_again(channels, fire, time_machine):
    time_machine.move_to(T0, tick=False)
    fire(channels=(SLACK,))
    Notification.objects.filter(channel=SLACK).update(
        status="SENDING", sent_at=None, claimed_until=T0 + timedelta(minutes=5)
    )

    time_machine.move_to(T0 + timedelta(minutes=4), tick=False)
    assert sweep_outbox() == 0
    time_machine.move_to(T0 + timedelta(minutes=6), tick=False)
    assert sweep_outbox() == 1
    assert _row(SLACK).status == "SENT"
    assert len(channels["webhooks"].received("/slack")) == 2


def test_backoff_doubles_from_30_seconds_and_is_capped_at_an_hour():
    assert [backoff_seconds(n) for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "slack+https://hooks.slack.com/services/T/B/x",
            ("slack", "https://hooks.slack.com/services/T/B/x"),
        ),
        (
            "discord+https://discord.com/api/webhooks/1/t",
            ("discord", "https://discord.com/api/webhooks/1/t"),
        ),
        ("json+https://sms.example/hook", ("json", "https://sms.example/hook")),
        (
            "https://hooks.slack.com/services/T/B/x",
            ("slack", "https://hooks.slack.com/services/T/B/x"),
        ),
        (
            "https://discord.com/api/webhooks/1/t",
            ("discord", "https://discord.com/api/webhooks/1/t"),
        ),
        ("https://example.com/alerts", ("json", "https://example.com/alerts")),
    ],
)
def test_webhook_format_is_chosen_per_url(raw, expected):
    assert parse_webhook_url(raw) == expected
