from __future__ import annotations

import datetime
import logging
import uuid
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.actors import Actor, acting_user
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent
from core.changes import apply_changes
from core.errors import ApplicationError, ConflictError, invalid_field
from core.mail import MailError
from core.money import MAX_AMOUNT, money_str
from invoices import mailer, pdf, selectors
from invoices.models import OPEN_STATUSES, Invoice, InvoiceCounter, InvoiceItem, InvoiceStatus
from invoices.numbering import draw_next_number, invoice_number
from leads.models import Lead

logger = logging.getLogger(__name__)

DEFAULT_DUE_DAYS = 7
MAX_ITEMS = 20
# How long a send may hold its invoice: far longer than the mail server's timeouts allow a send
# to take, so it only runs out when the sending process died mid-send.
SEND_LEASE = datetime.timedelta(minutes=5)


def _totals(
    items: list[dict[str, Any]], discount: Decimal, payable_now: Decimal | None
) -> tuple[Decimal, Decimal, Decimal]:
    if not 1 <= len(items) <= MAX_ITEMS:
        raise invalid_field("items", f"Add between 1 and {MAX_ITEMS} items.")
    subtotal = sum((item["amount"] for item in items), Decimal("0.00"))
    # Each item is capped by the money parser; the invoice as a whole must be too, or twenty
    # items of 999,999 make an amount no payment could ever be entered for.
    if subtotal > MAX_AMOUNT:
        raise invalid_field("items", "The items add up to more than 1,000,000.")
    total = subtotal - discount
    if total <= 0:
        raise invalid_field("discount", "The discount must be smaller than the sum of the items.")
    if payable_now is None:
        payable_now = total
    if not Decimal("0") < payable_now <= total:
        raise invalid_field(
            "payableNow", f"Payable now must be more than 0 and at most {total:.2f}."
        )
    return subtotal, total, payable_now


def _items_snapshot(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "description": item["description"],
            "amount": money_str(item["amount"]),
            "level": item.get("level", ""),
            "month": item.get("month", ""),
            "batch": item.get("batch", ""),
        }
        for item in items
    ]


def _create_items(invoice: Invoice, items: list[dict[str, Any]]) -> None:
    InvoiceItem.objects.bulk_create(
        InvoiceItem(
            invoice=invoice,
            position=i,
            description=item["description"],
            amount=item["amount"],
            level=item.get("level", ""),
            month=item.get("month", ""),
            batch=item.get("batch", ""),
        )
        for i, item in enumerate(items, start=1)
    )


def amounts_metadata(invoice: Invoice) -> dict[str, Any]:
    """The invoice's currency and amounts for audit metadata, each amount a two-decimal string."""
    return {
        "currency": invoice.currency,
        "subtotal": money_str(invoice.subtotal),
        "discount": money_str(invoice.discount),
        "totalAmount": money_str(invoice.total_amount),
        "payableNow": money_str(invoice.payable_now),
        "paidAmount": money_str(invoice.paid_amount),
        "remainingAmount": money_str(invoice.remaining_amount),
    }


def invoice_generate(
    *,
    lead: Lead,
    currency: str,
    items: list[dict[str, Any]],
    actor: Actor,
    discount: Decimal = Decimal("0.00"),
    payable_now: Decimal | None = None,
    due_date: datetime.date | None = None,
    notes: str = "",
) -> Invoice:
    """Issue the next invoice number of the year to a lead, with its items and INVOICE_GENERATED."""
    subtotal, total, payable_now = _totals(items, discount, payable_now)
    issue_date = timezone.localdate()
    due_date = due_date or issue_date + datetime.timedelta(days=DEFAULT_DUE_DAYS)
    if due_date < issue_date:
        raise invalid_field("dueDate", "The due date cannot be before the issue date.")
    try:
        return _generate(
            lead_id=lead.pk,
            currency=currency,
            items=items,
            actor=actor,
            discount=discount,
            subtotal=subtotal,
            total=total,
            payable_now=payable_now,
            issue_date=issue_date,
            due_date=due_date,
            notes=notes,
        )
    except ApplicationError:
        raise
    except Exception as exc:
        audit_record_independent(
            AuditEntry(
                Action.INVOICE_GENERATED,
                severity=Severity.ERROR,
                description=f"Invoice for {lead.name} could not be generated: {type(exc).__name__}",
                entity_type="Lead",
                entity_id=lead.pk,
                metadata={
                    "leadId": lead.pk,
                    "leadName": lead.name,
                    "currency": currency,
                    "subtotal": money_str(subtotal),
                    "discount": money_str(discount),
                    "totalAmount": money_str(total),
                    "payableNow": money_str(payable_now),
                    "items": _items_snapshot(items),
                    "outcome": "rolled_back",
                },
                actor=actor,
                error=exc,
            ),
        )
        raise


def _generate(
    *,
    lead_id: int,
    currency: str,
    items: list[dict[str, Any]],
    actor: Actor,
    discount: Decimal,
    subtotal: Decimal,
    total: Decimal,
    payable_now: Decimal,
    issue_date: datetime.date,
    due_date: datetime.date,
    notes: str,
) -> Invoice:
    with transaction.atomic():
        # Lead first, then the counter: the same order everywhere that takes both.
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        if lead.converted:
            raise ConflictError(
                "This lead is already a student; record further payments on their invoice.",
                code="lead_converted",
            )
        sequence = draw_next_number(InvoiceCounter, issue_date.year)
        invoice = Invoice.objects.create(
            number=invoice_number(issue_date.year, sequence),
            year=issue_date.year,
            sequence=sequence,
            lead=lead,
            currency=currency,
            subtotal=subtotal,
            discount=discount,
            total_amount=total,
            payable_now=payable_now,
            issue_date=issue_date,
            due_date=due_date,
            notes=notes,
            created_by=acting_user(actor),
        )
        _create_items(invoice, items)
        audit_record(
            AuditEntry(
                Action.INVOICE_GENERATED,
                description=(
                    f"Invoice {invoice.number} for {lead.name}: {invoice.currency} "
                    f"{money_str(total)}, {money_str(payable_now)} payable now"
                ),
                entity=invoice,
                metadata={
                    "invoiceNumber": invoice.number,
                    "leadId": lead.pk,
                    "leadName": lead.name,
                    **amounts_metadata(invoice),
                    "remainingAfterPayableNow": money_str(total - payable_now),
                    "dueDate": due_date.isoformat(),
                    "items": _items_snapshot(items),
                },
                actor=actor,
            ),
        )
        return invoice


def _lock_invoice(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().select_related("lead").get(pk=invoice_id)


def _refuse_while_sending(invoice: Invoice, doing: str) -> None:
    """Refuse to change an invoice (locked by the caller) whose e-mail is on its way: the lead
    would get a document that no longer matches the invoice, or one that was cancelled."""
    if invoice.sending_until is not None and invoice.sending_until > timezone.now():
        raise ConflictError(
            f"This invoice is being e-mailed to the lead right now; {doing} it once the e-mail "
            "has gone (in a few seconds).",
            code="invoice_being_sent",
        )


def invoice_update(*, invoice: Invoice, actor: Actor, **changes: Any) -> Invoice:
    """Edit a DRAFT or SENT invoice; totals are recomputed, INVOICE_UPDATED keeps before/after."""
    with transaction.atomic():
        invoice = _lock_invoice(invoice.pk)
        if invoice.status not in OPEN_STATUSES:
            raise ConflictError(
                f"A {invoice.get_status_display().lower()} invoice cannot be edited.",
                code="invoice_not_editable",
            )
        _refuse_while_sending(invoice, "edit")
        old_items = selectors.invoice_item_rows(invoice)
        items = changes.get("items", old_items)
        discount = changes.get("discount", invoice.discount)
        payable_now = changes.get("payable_now", invoice.payable_now)
        if "payable_now" not in changes and invoice.payable_now == invoice.total_amount:
            payable_now = None  # it was "pay everything now": it follows the new total
        subtotal, total, payable_now = _totals(items, discount, payable_now)
        new_values = {
            "currency": changes.get("currency", invoice.currency),
            "subtotal": subtotal,
            "discount": discount,
            "total_amount": total,
            "payable_now": payable_now,
            "due_date": changes.get("due_date", invoice.due_date),
            "notes": changes.get("notes", invoice.notes),
        }
        if new_values["due_date"] < invoice.issue_date:
            raise invalid_field("dueDate", "The due date cannot be before the issue date.")
        diff = apply_changes(invoice, new_values)
        if "items" in changes and _items_snapshot(old_items) != _items_snapshot(items):
            diff["items"] = {"before": _items_snapshot(old_items), "after": _items_snapshot(items)}
            invoice.items.all().delete()
            _create_items(invoice, items)
        if diff:
            invoice.save()
            audit_record(
                AuditEntry(
                    Action.INVOICE_UPDATED,
                    description=f"Invoice {invoice.number} updated: {', '.join(diff)}",
                    entity=invoice,
                    metadata={"invoiceNumber": invoice.number, "changes": diff},
                    actor=actor,
                ),
            )
    return invoice


def invoice_cancel(*, invoice: Invoice, reason: str, actor: Actor) -> Invoice:
    """Cancel an invoice on which no money was received; the number stays used (never reissued)."""
    with transaction.atomic():
        invoice = _lock_invoice(invoice.pk)
        if invoice.paid_amount > 0 or invoice.status in (
            InvoiceStatus.PARTIALLY_PAID,
            InvoiceStatus.PAID,
        ):
            raise ConflictError(
                "Money was received on this invoice; it cannot be cancelled.",
                code="invoice_has_payments",
            )
        if invoice.status == InvoiceStatus.CANCELLED:
            raise ConflictError("This invoice is already cancelled.", code="invoice_cancelled")
        _refuse_while_sending(invoice, "cancel")
        before = invoice.status
        invoice.status = InvoiceStatus.CANCELLED
        invoice.cancel_reason = reason
        invoice.save(update_fields=["status", "cancel_reason", "updated_at"])
        audit_record(
            AuditEntry(
                Action.INVOICE_CANCELLED,
                description=f"Invoice {invoice.number} cancelled: {reason or 'no reason given'}",
                entity=invoice,
                metadata={
                    "invoiceNumber": invoice.number,
                    "reason": reason,
                    "statusBefore": before,
                    **amounts_metadata(invoice),
                },
                actor=actor,
            ),
        )
    return invoice


def invoice_send(*, invoice: Invoice, actor: Actor) -> Invoice:
    """E-mail the invoice PDF to the lead, then mark it SENT.

    The mail goes out outside any transaction (a slow SMTP server must not hold row locks), so
    the send first *claims* the invoice with a conditional UPDATE that commits at once: it
    succeeds only while the invoice is open and no other send holds it. A cancel or an edit
    that committed before the claim stops the send (409 invoice_not_sendable); one that comes
    while the claim is held is refused (409 invoice_being_sent) and can be repeated once the
    e-mail has gone. The status changes only after the server accepted the mail. If it refuses
    or is down, the claim is released, an EMAIL_FAILED row is written, the invoice stays as it
    was, and the caller may retry.
    """
    invoice = _claim_for_sending(invoice.pk)
    token = invoice.send_token
    context = {
        "invoiceNumber": invoice.number,
        "leadId": invoice.lead_id,
        "recipient": invoice.lead.email,
        **amounts_metadata(invoice),
    }
    try:
        # What the customer reads is the invoice as it will be once this e-mail has gone: a
        # draft is sent, never "Draft".
        shown = InvoiceStatus.SENT if invoice.status == InvoiceStatus.DRAFT else invoice.status
        mailer.send_invoice(invoice, pdf.render_invoice_pdf(invoice, status=shown), status=shown)
    except MailError as exc:
        _release_sending(invoice.pk, token)
        audit_record_independent(
            AuditEntry(
                Action.EMAIL_FAILED,
                severity=Severity.ERROR,
                description=(
                    f"Invoice {invoice.number} could not be e-mailed to {invoice.lead.email}"
                ),
                entity=invoice,
                metadata={**context, "retryable": exc.retryable},
                actor=actor,
                error=exc,
            ),
        )
        raise ApplicationError(
            "The mail server did not accept the e-mail; the invoice was not sent. Try again later.",
            code="email_failed",
            status_code=502,
        ) from exc
    except BaseException:
        _release_sending(invoice.pk, token)
        raise
    with transaction.atomic():
        invoice = _lock_invoice(invoice.pk)
        before = invoice.status
        if invoice.status == InvoiceStatus.DRAFT:
            invoice.status = InvoiceStatus.SENT
        invoice.sent_at = timezone.now()
        fields = ["status", "sent_at", "updated_at"]
        if invoice.send_token == token:
            invoice.sending_until, invoice.send_token = None, ""
            fields += ["sending_until", "send_token"]
        invoice.save(update_fields=fields)
        audit_record(
            AuditEntry(
                Action.EMAIL_SENT,
                description=f"Invoice {invoice.number} e-mailed to {invoice.lead.email}",
                entity=invoice,
                metadata={**context, "statusAtSend": before},
                actor=actor,
            ),
        )
        if before not in OPEN_STATUSES:
            # Paid while the mail server was talking (payments do not wait for a send), or
            # cancelled after a claim that outlived SEND_LEASE: the e-mail went (EMAIL_SENT says
            # so), but "invoice sent" would describe a state the invoice no longer has.
            return invoice
        audit_record(
            AuditEntry(
                Action.INVOICE_SENT,
                description=f"Invoice {invoice.number} sent to {invoice.lead.name}",
                entity=invoice,
                metadata={**context, "statusBefore": before, "statusAfter": invoice.status},
                actor=actor,
            ),
        )
    return invoice


def _claim_for_sending(invoice_id: int) -> Invoice:
    """Mark the invoice as being sent (committed at once) and return it as it is now."""
    now = timezone.now()
    token = uuid.uuid4().hex
    claimed = (
        Invoice.objects.filter(pk=invoice_id, status__in=OPEN_STATUSES)
        .exclude(lead__email="")
        .filter(Q(sending_until__isnull=True) | Q(sending_until__lte=now))
        .update(sending_until=now + SEND_LEASE, send_token=token)
    )
    invoice = Invoice.objects.select_related("lead").get(pk=invoice_id)
    if claimed == 1:
        return invoice
    if invoice.status not in OPEN_STATUSES:
        raise ConflictError(
            f"A {invoice.get_status_display().lower()} invoice cannot be sent.",
            code="invoice_not_sendable",
        )
    if not invoice.lead.email:
        raise ApplicationError(
            "This lead has no e-mail address; add one to the lead first.",
            code="lead_has_no_email",
        )
    raise ConflictError(
        "This invoice is already being e-mailed; it will show as sent in a few seconds.",
        code="invoice_being_sent",
    )


def _release_sending(invoice_id: int, token: str) -> None:
    """Give up the send's claim. Never raises: it runs while another error is handled, and a
    claim left behind runs out after SEND_LEASE."""
    try:
        Invoice.objects.filter(pk=invoice_id, send_token=token).update(
            sending_until=None, send_token=""
        )
    except DatabaseError as exc:
        logger.error(
            "invoice send release failed: invoice=%s error=%s", invoice_id, type(exc).__name__
        )
