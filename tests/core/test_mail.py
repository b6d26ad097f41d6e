"""The one mail adapter against a real SMTP server on 127.0.0.1 (aiosmtpd)."""

import email
import socket

import pytest
from aiosmtpd.controller import Controller

from core.mail import Attachment, MailError, send_mail
from tests.invoices.conftest import _free_port, _use_smtp


class ScriptedServer:
    """Accepts everything unless told which reply to give at MAIL, RCPT or DATA."""

    def __init__(self) -> None:
        self.replies: dict[str, str] = {}
        self.messages: list = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if "MAIL" in self.replies:
            return self.replies["MAIL"]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "RCPT" in self.replies:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if "DATA" in self.replies:
            return self.replies["DATA"]
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def server(settings):
    handler = ScriptedServer()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    _use_smtp(settings, controller.port)
    yield handler
    controller.stop()


def _send() -> None:
    send_mail(
        subject="Your Plan Beta invoice PB-2026-0001",
        body="Please find your invoice attached.",
        to=["arjun@example.com"],
        attachments=[Attachment("PB-2026-0001.pdf", b"%PDF-1.4 test", "application/pdf")],
    )


def test_an_accepted_message_arrives_with_its_attachment(server):
    _send()

    [envelope] = server.messages
    assert envelope.rcpt_tos == ["arjun@example.com"]
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"] == "Your Plan Beta invoice PB-2026-0001"
    [pdf] = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert (pdf.get_filename(), pdf.get_payload(decode=True)) == (
        "PB-2026-0001.pdf",
        b"%PDF-1.4 test",
    )


@pytest.mark.parametrize(
    ("stage", "reply", "retryable", "reason"),
    [
        ("MAIL", "421 4.3.2 Service shutting down", True, "SMTP 421: 4.3.2 Service shutting down"),
        ("RCPT", "450 4.2.0 Greylisted, come back later", True, "recipients refused: "),
        ("RCPT", "550 5.1.1 No such user", False, "recipients refused: "),
        ("DATA", "451 4.3.0 Try again", True, "SMTP 451: 4.3.0 Try again"),
        ("DATA", "554 5.7.1 Message rejected", False, "SMTP 554: 5.7.1 Message rejected"),
    ],
)
def test_4xx_is_retryable_and_5xx_is_permanent(server, stage, reply, retryable, reason):
    server.replies[stage] = reply

    with pytest.raises(MailError) as caught:
        _send()

    assert caught.value.retryable is retryable
    assert caught.value.reason.startswith(reason)
    assert server.messages == []


def test_a_recipient_refusal_names_the_address_and_the_code(server):
    server.replies["RCPT"] = "550 5.1.1 No such user"

    with pytest.raises(MailError) as caught:
        _send()

    assert caught.value.reason == (
        "recipients refused: {'arjun@example.com': (550, b'5.1.1 No such user')}"
    )


def test_a_server_that_is_down_is_retryable(settings):
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        _use_smtp(settings, closed.getsockname()[1])

        with pytest.raises(MailError) as caught:
            _send()

    assert caught.value.retryable is True
    assert caught.value.reason.startswith("SMTP unavailable: ConnectionRefusedError")


def test_a_server_that_never_answers_gives_up_after_the_timeout_and_is_retryable(settings):
    with socket.socket() as silent:  # accepts the connection (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        _use_smtp(settings, silent.getsockname()[1])
        settings.EMAIL_TIMEOUT = 0.2

        with pytest.raises(MailError) as caught:
            _send()

    assert caught.value.retryable is True
    # smtplib reports the timeout while waiting for the greeting as a disconnection.
    assert caught.value.reason == (
        "SMTP unavailable: SMTPServerDisconnected: Connection unexpectedly closed: timed out"
    )
