"""The one adapter to the mail server: invoices to leads and alerts to founders both go through it.

Django's e-mail backend (`EMAIL_URL`) with an explicit timeout (`EMAIL_TIMEOUT`, per connect and
per reply), and one error type that says whether trying again later can help:

* retryable: the server could not be reached, dropped the connection, timed out, or answered
  4xx ("try again later", e.g. 421 shutting down, 451 local error, 452 out of storage);
* permanent: the server answered 5xx (a refusal: bad sender, message rejected, authentication
  failed, no such recipient).
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

_REASON_CHARS = 500


class MailError(Exception):
    """The message was not accepted. `retryable` says whether trying again later can help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


def send_mail(
    *,
    subject: str,
    body: str,
    to: Sequence[str],
    attachments: Sequence[Attachment] = (),
    from_email: str | None = None,
) -> None:
    """Hand one message to the mail server, or raise MailError. Call it outside any database
    transaction: a slow server must not hold row locks."""
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=list(to),
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    for attachment in attachments:
        message.attach(attachment.filename, attachment.content, attachment.mimetype)
    try:
        sent = message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        # smtplib raises this only when every recipient was refused. A 5xx for any of them is
        # for good (no such mailbox); 4xx for all is "later" (greylisting, a full mailbox).
        codes = [code for code, _ in exc.recipients.values()]
        raise MailError(
            f"recipients refused: {exc.recipients}"[:_REASON_CHARS],
            retryable=all(400 <= code < 500 for code in codes),
        ) from exc
    except smtplib.SMTPResponseException as exc:
        detail = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise MailError(
            f"SMTP {exc.smtp_code}: {detail}"[:_REASON_CHARS],
            retryable=not 500 <= exc.smtp_code < 600,
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # Refused or dropped connections, timeouts (TimeoutError is an OSError), a server that
        # hung up mid-conversation: the server may well answer later.
        raise MailError(
            f"SMTP unavailable: {type(exc).__name__}: {exc}"[:_REASON_CHARS], retryable=True
        ) from exc
    if sent != 1:
        raise MailError("SMTP unavailable: the backend sent nothing", retryable=True)
