"""Money received: pay-and-convert (the first payment turns a lead into a student) and later
instalments. Both are exactly-once through payments.idempotency.run_exactly_once and fully
audited."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from accounts.actors import Actor, acting_user
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record, audit_record_independent, audit_record_many
from core.errors import ApplicationError, ConflictError, invalid_field
from core.money import money_str
from core.timefmt import school_today
from invoices.models import OPEN_STATUSES, Invoice, InvoiceStatus
from invoices.numbering import STUDENT_CODE_PREFIX, draw_next_code_into
from invoices.selectors import invoice_get
from invoices.services import amounts_metadata
from leads.models import Lead, LeadStatus
from leads.validators import canonical_or_same
from payments.idempotency import Answer, MoneyRequest, run_exactly_once
from payments.models import Batch, Payment, PaymentStatus, Student, StudentCounter
from payments.responses import money_result_body, with_student_code
from payments.statements import (
    insert_student_and_payment,
    locked_invoice,
    update_invoice_and_lead,
)

PAY_AND_CONVERT = "pay_and_convert"
LATER_PAYMENT = "payment"


def _body(*, invoice: Invoice, student: Student, payment: Payment) -> dict[str, Any]:
    # Read the invoice again (lead, student and items loaded): the answer shows it as
    # GET /api/invoices/{id} would right after this payment, and is stored for replays.
    return money_result_body(invoice=invoice_get(invoice.pk), student=student, payment=payment)


def _not_payable(invoice: Invoice) -> ConflictError:
    return ConflictError(
        f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; "
        "it cannot take this payment.",
        code="invoice_not_payable",
    )


def _check_amount(amount: Decimal, invoice: Invoice, field: str) -> None:
    if amount > invoice.remaining_amount:
        remaining = money_str(invoice.remaining_amount)
        raise ApplicationError(
            f"The amount is more than the {invoice.currency} {remaining} left on the invoice.",
            code="amount_exceeds_remaining",
            details={field: [f"Only {remaining} remains to be paid on this invoice."]},
        )


def _whatsapp_in_use(holder_code: str | None = None) -> ConflictError:
    who = f"Student {holder_code}" if holder_code else "Another student"
    return ConflictError(
        f"{who} already has this WhatsApp number; correct the lead first.",
        code="whatsapp_in_use",
    )


def _status_after(invoice: Invoice) -> str:
    return InvoiceStatus.PAID if invoice.remaining_amount == 0 else InvoiceStatus.PARTIALLY_PAID


def _new_payment(
    *,
    invoice: Invoice,
    student: Student,
    amount: Decimal,
    method: str,
    transaction_id: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime.datetime,
    paid_on: datetime.date | None,
) -> Payment:
    """The payment, not saved yet."""
    return Payment(
        student=student,
        invoice=invoice,
        amount=amount,
        currency=invoice.currency,
        method=method,
        transaction_id=transaction_id,
        paid_at=now,
        paid_on=paid_on or school_today(),
        recorded_by=acting_user(actor),
        idempotency_key=idempotency_key,
        created_at=now,
    )


_INVOICE_TAKES = ("paid_amount", "status", "updated_at")
_LEAD_CONVERTED = ("converted", "converted_at", "status", "updated_at")


def _add_to_invoice(invoice: Invoice, amount: Decimal) -> None:
    """Add the amount to the invoice (the fields of _INVOICE_TAKES), not saved yet. The caller
    holds the invoice's row lock, so the sum computed here is the one stored."""
    invoice.paid_amount += amount
    invoice.status = _status_after(invoice)


def _invoice_takes(invoice: Invoice, amount: Decimal) -> None:
    _add_to_invoice(invoice, amount)
    invoice.save(update_fields=_INVOICE_TAKES)


def _check_paid_on(paid_on: datetime.date | None) -> None:
    # The school's today: a payment received this morning in India is not "in the future" for a
    # server whose clock is still on yesterday in UTC.
    if paid_on is not None and paid_on > school_today():
        raise invalid_field("paidOn", "The payment date cannot be in the future.")


def _paid_on_payload(paid_on: datetime.date | None) -> dict[str, str]:
    # The date only when one was sent: a retry the next day with the same key and no date is the
    # same request, and a key stored before payments had dates still replays.
    return {"paidOn": paid_on.isoformat()} if paid_on else {}


def _student_status(student: Student) -> str:
    return PaymentStatus.PAID if student.balance == 0 else PaymentStatus.PARTIAL


def _money_request(
    *,
    operation: str,
    action: str,
    subject: str,
    invoice: Invoice,
    idempotency_key: str,
    payload: dict[str, Any],
    actor: Actor,
    paid_on: datetime.date | None,
) -> MoneyRequest:
    """The request as the exactly-once frame takes it. Its `context`, what every row about the
    request carries (failure rows included), is the payload with the invoice and the currency,
    built from the invoice in hand before anything touches the database."""
    context = {
        "invoiceId": invoice.pk,
        "invoiceNumber": invoice.number,
        "leadId": invoice.lead_id,
        **payload,
        "currency": invoice.currency,
        # The rows say the day the money was received even when the payload (and so the
        # idempotency record) leaves it to today.
        "paidOn": (paid_on or school_today()).isoformat(),
        "idempotencyKey": idempotency_key,
    }
    return MoneyRequest(
        operation=operation,
        key=idempotency_key,
        invoice_id=invoice.pk,
        payload=payload,
        action=action,
        subject=subject,
        context=context,
        actor=actor,
    )


def pay_and_convert(
    *,
    invoice: Invoice,
    amount: Decimal,
    idempotency_key: str,
    actor: Actor,
    method: str = "BANK_TRANSFER",
    transaction_id: str = "",
    batch_id: int | None = None,
    paid_on: datetime.date | None = None,
) -> Answer:
    """Record the first payment on a DRAFT/SENT invoice and turn its lead into a student.

    One transaction creates the student and payment, updates invoice and lead, writes the four
    audit rows and stores the idempotent answer. On a refused double conversion a WARNING row is
    written; on any unexpected failure nothing is kept except one CRITICAL row, and the error
    propagates (the API answers 500 with the request id).
    """
    _check_paid_on(paid_on)
    request = _money_request(
        operation=PAY_AND_CONVERT,
        action=Action.LEAD_TO_STUDENT_CONVERSION,
        subject=f"Conversion of invoice {invoice.number}",
        invoice=invoice,
        idempotency_key=idempotency_key,
        payload={
            "paidAmount": money_str(amount),
            "method": method,
            "transactionId": transaction_id,
            "batchId": batch_id,
            **_paid_on_payload(paid_on),
        },
        actor=actor,
        paid_on=paid_on,
    )

    def work() -> tuple[int, dict[str, Any]]:
        conversion = _convert(
            invoice_id=invoice.pk,
            amount=amount,
            method=method,
            transaction_id=transaction_id,
            batch_id=batch_id,
            idempotency_key=idempotency_key,
            actor=actor,
            paid_on=paid_on,
        )
        # The answer as GET /api/invoices/{id} and /api/students/{id} show these rows right after
        # this commit, built from the rows held here (the invoice locked and updated, its lead
        # holding the new student, its items) rather than read again, and before the student
        # code exists: from the draw on, every other conversion of the year waits for COMMIT.
        body = money_result_body(
            invoice=conversion.invoice, student=conversion.student, payment=conversion.payment
        )
        _draw_student_code(conversion.student)
        _audit_conversion(conversion, context=request.context, actor=actor)
        return 201, with_student_code(body, conversion.student.student_code)

    try:
        return run_exactly_once(request, work)
    except ConflictError as exc:
        if exc.code == "already_converted":
            audit_record_independent(
                AuditEntry(
                    Action.LEAD_TO_STUDENT_CONVERSION,
                    severity=Severity.WARNING,
                    description=f"Refused a second conversion of invoice {invoice.number}",
                    entity_type="Invoice",
                    entity_id=invoice.pk,
                    metadata={**request.context, "outcome": "already_converted"},
                    actor=actor,
                ),
            )
        raise


@dataclass(frozen=True)
class _Conversion:
    invoice: Invoice
    lead: Lead
    student: Student
    payment: Payment
    batch: Batch | None
    status_before: str


def _convert(
    *,
    invoice_id: int,
    amount: Decimal,
    method: str,
    transaction_id: str,
    batch_id: int | None,
    idempotency_key: str,
    actor: Actor,
    paid_on: datetime.date | None,
) -> _Conversion:
    """The business writes of a conversion but its student code, in the frame's transaction.

    The code comes last (_draw_student_code) because every conversion of the year queues on the
    counter's row from the moment a code is drawn until COMMIT: so the student is inserted here
    under a provisional code, and after the draw only what carries the code is left to write
    (the code itself, the audit rows, the stored answer; tests/payments/
    test_conversion_statements.py lists the statements).
    """
    invoice = locked_invoice(invoice_id)
    lead = invoice.lead
    # Compared and stored in E.164, as numbers are stored since they are checked with
    # phonenumbers; a lead written before that in another spelling must not slip past the
    # unique index.
    whatsapp = canonical_or_same(lead.whatsapp)
    batch = _check_convertible(
        invoice=invoice, lead=lead, whatsapp=whatsapp, amount=amount, batch_id=batch_id
    )
    now = timezone.now()
    status_before = invoice.status
    _add_to_invoice(invoice, amount)
    lead.converted = True
    lead.converted_at = now
    lead.status = LeadStatus.CONVERTED
    update_invoice_and_lead(invoice, _INVOICE_TAKES, lead, _LEAD_CONVERTED)
    student = _new_student(
        invoice=invoice, lead=lead, whatsapp=whatsapp, batch=batch, amount=amount, now=now
    )
    payment = _new_payment(
        invoice=invoice,
        student=student,
        amount=amount,
        method=method,
        transaction_id=transaction_id,
        idempotency_key=idempotency_key,
        actor=actor,
        now=now,
        paid_on=paid_on,
    )
    try:
        insert_student_and_payment(student, payment)
    except IntegrityError as exc:
        # Two leads with one WhatsApp number converting at the same moment: the check above
        # saw neither, the unique index stops the second.
        if "whatsapp" not in str(exc):
            raise
        raise _whatsapp_in_use() from exc
    return _Conversion(invoice, lead, student, payment, batch, status_before)


def _check_convertible(
    *, invoice: Invoice, lead: Lead, whatsapp: str, amount: Decimal, batch_id: int | None
) -> Batch | None:
    """Refuse what the locked invoice and lead forbid; return the locked batch, if one was named."""
    if lead.converted:
        raise ConflictError(
            f"{lead.name} is already a student; record further money as a payment.",
            code="already_converted",
        )
    if invoice.status not in OPEN_STATUSES:
        raise _not_payable(invoice)
    _check_amount(amount, invoice, "paidAmount")
    holder_code = getattr(invoice, "whatsapp_holder", None)
    if whatsapp != lead.whatsapp:
        # A lead stored in an older spelling: the lock's query compared that spelling.
        holder = Student.objects.filter(whatsapp=whatsapp).values_list("student_code", flat=True)
        holder_code = holder.first()
    if holder_code:
        raise _whatsapp_in_use(holder_code)
    if batch_id is None:
        return None
    batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise invalid_field("batchId", "There is no batch with this id.")
    if batch.students.count() >= batch.seats:
        raise ConflictError(f"Batch {batch.code} is full.", code="batch_full")
    return batch


def _new_student(
    *,
    invoice: Invoice,
    lead: Lead,
    whatsapp: str,
    batch: Batch | None,
    amount: Decimal,
    now: datetime.datetime,
) -> Student:
    """The student, not saved yet, under a provisional code, unique and never seen by anyone
    else: the transaction either replaces it (_draw_student_code) before it commits or rolls
    back."""
    # The items were loaded with the invoice, by position.
    level = next((item.level for item in invoice.items.all() if item.level), "")
    return Student(
        student_code=f"~{uuid.uuid4().hex[:19]}",
        lead=lead,
        name=lead.name,
        email=lead.email,
        whatsapp=whatsapp,
        level=level or lead.interested_level,
        batch=batch,
        currency=invoice.currency,
        total_amount=invoice.total_amount,
        total_paid=amount,
        payment_status=(
            PaymentStatus.PAID if amount == invoice.total_amount else PaymentStatus.PARTIAL
        ),
        created_at=now,
    )


def _draw_student_code(student: Student) -> None:
    """Give the student its gapless code. The counter's row stays locked from here to COMMIT."""
    year = timezone.localdate().year
    _, student.student_code = draw_next_code_into(
        StudentCounter, year, prefix=STUDENT_CODE_PREFIX, row=student, field="student_code"
    )


def _audit_conversion(conversion: _Conversion, *, context: dict[str, Any], actor: Actor) -> None:
    """The four rows of a conversion, in the conversion's transaction."""
    invoice, lead, student, payment = (
        conversion.invoice,
        conversion.lead,
        conversion.student,
        conversion.payment,
    )
    amount = money_str(payment.amount)
    # One INSERT for the four rows rather than four: one round trip while the counter is locked.
    audit_record_many(
        [
            AuditEntry(
                Action.LEAD_TO_STUDENT_CONVERSION,
                description=(
                    f"{lead.name} converted to student {student.student_code}: paid "
                    f"{invoice.currency} {amount} on invoice {invoice.number}"
                ),
                entity=invoice,
                metadata={
                    **context,
                    "leadName": lead.name,
                    "invoiceStatusBefore": conversion.status_before,
                    "studentId": student.student_code,
                    "studentPk": student.pk,
                    "paymentId": payment.pk,
                    "invoiceStatusAfter": invoice.status,
                    **amounts_metadata(invoice),
                },
                actor=actor,
            ),
            AuditEntry(
                Action.PAYMENT_RECEIVED,
                description=(
                    f"{invoice.currency} {amount} received from {lead.name} "
                    f"({payment.method}) on invoice {invoice.number}"
                ),
                entity=payment,
                metadata={
                    "invoiceNumber": invoice.number,
                    "studentId": student.student_code,
                    "amount": amount,
                    "currency": invoice.currency,
                    "method": payment.method,
                    "transactionId": payment.transaction_id,
                    "paidOn": payment.paid_on.isoformat(),
                    "invoiceStatusBefore": conversion.status_before,
                    "invoiceStatusAfter": invoice.status,
                    "remainingAmount": money_str(invoice.remaining_amount),
                    "idempotencyKey": payment.idempotency_key,
                },
                actor=actor,
            ),
            AuditEntry(
                Action.STUDENT_CREATED,
                description=f"Student {student.student_code} ({student.name}) created",
                entity=student,
                metadata={
                    "studentId": student.student_code,
                    "leadId": lead.pk,
                    "invoiceNumber": invoice.number,
                    "batch": conversion.batch.code if conversion.batch else None,
                    "totalAmount": money_str(student.total_amount),
                    "totalPaid": money_str(student.total_paid),
                    "currency": student.currency,
                },
                actor=actor,
            ),
            AuditEntry(
                Action.LEAD_CONVERTED,
                description=f"Lead {lead.name} converted to student {student.student_code}",
                entity=lead,
                metadata={
                    "leadName": lead.name,
                    "studentId": student.student_code,
                    "invoiceNumber": invoice.number,
                },
                actor=actor,
            ),
        ]
    )


def payment_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    idempotency_key: str,
    actor: Actor,
    method: str = "BANK_TRANSFER",
    transaction_id: str = "",
    paid_on: datetime.date | None = None,
) -> Answer:
    """Record a later instalment on a converted invoice; PARTIALLY_PAID becomes PAID at zero."""
    _check_paid_on(paid_on)
    request = _money_request(
        operation=LATER_PAYMENT,
        action=Action.PAYMENT_RECEIVED,
        subject=f"Payment on invoice {invoice.number}",
        invoice=invoice,
        idempotency_key=idempotency_key,
        payload={
            "amount": money_str(amount),
            "method": method,
            "transactionId": transaction_id,
            **_paid_on_payload(paid_on),
        },
        actor=actor,
        paid_on=paid_on,
    )

    def work() -> tuple[int, dict[str, Any]]:
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status == InvoiceStatus.CANCELLED:
            raise _not_payable(locked)
        if locked.status in OPEN_STATUSES:
            raise ConflictError(
                "This invoice has no student yet; use pay and convert for the first payment.",
                code="not_converted",
            )
        _check_amount(amount, locked, "amount")
        student = Student.objects.select_for_update().get(lead_id=locked.lead_id)
        status_before = locked.status
        payment = _new_payment(
            invoice=locked,
            student=student,
            amount=amount,
            method=method,
            transaction_id=transaction_id,
            idempotency_key=idempotency_key,
            actor=actor,
            now=timezone.now(),
            paid_on=paid_on,
        )
        payment.save(force_insert=True)
        _invoice_takes(locked, amount)
        student.total_paid += amount
        student.payment_status = _student_status(student)
        student.save(update_fields=["total_paid", "payment_status", "updated_at"])
        _audit_payment(
            invoice=locked,
            student=student,
            payment=payment,
            status_before=status_before,
            context=request.context,
            actor=actor,
        )
        return 201, _body(invoice=locked, student=student, payment=payment)

    return run_exactly_once(request, work)


def _audit_payment(
    *,
    invoice: Invoice,
    student: Student,
    payment: Payment,
    status_before: str,
    context: dict[str, Any],
    actor: Actor,
) -> None:
    """The PAYMENT_RECEIVED row of a later payment, in the payment's transaction."""
    audit_record(
        AuditEntry(
            Action.PAYMENT_RECEIVED,
            description=(
                f"{invoice.currency} {money_str(payment.amount)} received from {student.name} "
                f"({payment.method}) on invoice {invoice.number}"
            ),
            entity=payment,
            metadata={
                **context,
                "studentId": student.student_code,
                "invoiceStatusBefore": status_before,
                "invoiceStatusAfter": invoice.status,
                "studentBalance": money_str(student.balance),
                **amounts_metadata(invoice),
            },
            actor=actor,
        ),
    )
