import asyncio

import pytest
from aiosmtpd.controller import Controller
from django.db import connections

from audit.models import AuditLog
from invoices.models import Invoice
from invoices.services import invoice_cancel, invoice_send
from tests.invoices.conftest import RecordingHandler, _free_port, _use_smtp
from tests.money_factories import make_invoice


class CancelWhileSending(RecordingHandler):
    """Cancels the invoice while the mail server holds the message, as a colleague might."""

    def __init__(self, invoice_id: int, actor) -> None:
        super().__init__()
        self.invoice_id, self.actor = invoice_id, actor

    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(None, self._cancel)
        return await super().handle_DATA(server, session, envelope)

    def _cancel(self) -> None:
        try:
            invoice = Invoice.objects.get(pk=self.invoice_id)
            invoice_cancel(invoice=invoice, reason="changed their mind", actor=self.actor)
        finally:
            connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_invoice_cancelled_while_its_mail_was_sent_is_not_marked_sent(settings, marketing):
    invoice = make_invoice(actor=marketing)
    handler = CancelWhileSending(invoice.pk, marketing)
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    _use_smtp(settings, controller.port)
    try:
        invoice_send(invoice=invoice, actor=marketing)
    finally:
        controller.stop()

    invoice.refresh_from_db()
    assert len(handler.messages) == 1
    assert invoice.status == "CANCELLED"
    actions = list(AuditLog.objects.order_by("id").values_list("action", "metadata__statusAtSend"))
    assert actions[-2:] == [("INVOICE_CANCELLED", None), ("EMAIL_SENT", "CANCELLED")]
    assert not AuditLog.objects.filter(action="INVOICE_SENT").exists()
