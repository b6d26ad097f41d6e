"""The one adapter to the mail server for invoices: Django's e-mail backend with a timeout."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.template.loader import render_to_string

from invoices.models import Invoice


class EmailDeliveryError(Exception):
    """The mail was not accepted. `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def send_invoice(invoice: Invoice, document: bytes) -> None:
    context = {"invoice": invoice, "lead": invoice.lead}
    message = EmailMessage(
        subject=f"Your Plan Beta invoice {invoice.number}",
        body=render_to_string("emails/invoice.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[invoice.lead.email],
        connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
    )
    message.attach(f"{invoice.number}.pdf", document, "application/pdf")
    try:
        sent = message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise EmailDeliveryError(f"recipient refused: {exc.recipients}", retryable=False) from exc
    except smtplib.SMTPResponseException as exc:
        # 4xx is the server asking us to come back later; 5xx is a refusal.
        raise EmailDeliveryError(
            f"mail server answered {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500
        ) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise EmailDeliveryError(
            f"mail server unreachable: {type(exc).__name__}", retryable=True
        ) from exc
    if sent != 1:
        raise EmailDeliveryError("mail server accepted nothing", retryable=True)
