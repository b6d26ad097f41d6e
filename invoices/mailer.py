"""The invoice e-mail to a lead, sent through the one mail adapter (core.mail)."""

from __future__ import annotations

from django.template.loader import render_to_string

from core.mail import Attachment, send_mail
from invoices.models import Invoice


def send_invoice(invoice: Invoice, document: bytes) -> None:
    """E-mail the invoice PDF to its lead; raises core.mail.MailError if it was not accepted."""
    context = {"invoice": invoice, "lead": invoice.lead}
    send_mail(
        subject=f"Your Plan Beta invoice {invoice.number}",
        body=render_to_string("emails/invoice.txt", context),
        to=[invoice.lead.email],
        attachments=[Attachment(f"{invoice.number}.pdf", document, "application/pdf")],
    )
