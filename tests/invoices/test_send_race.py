"""Cancel, edit and send racing an invoice e-mail that is on its way to the lead.

The SMTP server (aiosmtpd on 127.0.0.1) holds the message at DATA until the test lets it go,
so "while the mail is being sent" is a state the test controls, not a moment it hopes to hit.
"""

import asyncio
import datetime
import json
import threading

import pytest
from aiosmtpd.controller import Controller
from django.db import connections
from django.utils import timezone

from audit.models import AuditLog
from invoices.models import Invoice
from invoices.services import SEND_LEASE, invoice_send
from tests.factories import make_lead
from tests.invoices.conftest import RecordingHandler, _free_port, _use_smtp
from tests.money_factories import make_invoice

# Far longer than any step here takes; only a hung test would reach it.
GUARD = 30


class HoldsTheMessage(RecordingHandler):
    """Takes the message at DATA, then answers only once `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.arrived.set()
        released = await asyncio.get_running_loop().run_in_executor(None, self.release.wait, GUARD)
        assert released
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def holding_server(settings):
    handler = HoldsTheMessage()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    _use_smtp(settings, controller.port)
    settings.EMAIL_TIMEOUT = GUARD
    yield handler
    handler.release.set()
    controller.stop()


def _send_in_background(invoice, actor):
    """invoice_send on its own thread and database connection, as another request would."""
    outcome = {}

    def run():
        try:
            outcome["invoice"] = invoice_send(invoice=invoice, actor=actor)
        except Exception as exc:  # the test asserts on it
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _actions(invoice):
    return list(
        AuditLog.objects.filter(entity_type="Invoice", entity_id=str(invoice.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def _invoice(lead_email="arjun@example.com", **kwargs):
    return make_invoice(lead=make_lead(email=lead_email), **kwargs)


def _cancel(client, invoice):
    return client.post(
        f"/api/invoices/{invoice.pk}/cancel",
        json.dumps({"reason": "changed their mind"}),
        content_type="application/json",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_while_the_mail_is_on_its_way_is_refused_and_can_be_repeated_after_it(
    marketing_client, marketing, holding_server
):
    invoice = _invoice(actor=marketing)
    url = f"/api/invoices/{invoice.pk}"
    sender, outcome = _send_in_background(invoice, marketing)
    assert holding_server.arrived.wait(GUARD)

    cancel = _cancel(marketing_client, invoice)
    edit = marketing_client.patch(
        url, json.dumps({"notes": "new terms"}), content_type="application/json"
    )

    for response in (cancel, edit):
        assert (response.status_code, response.json()["code"]) == (409, "invoice_being_sent")
    assert "being e-mailed" in cancel.json()["error"]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.notes, invoice.cancel_reason) == ("DRAFT", "", "")
    assert _actions(invoice) == ["INVOICE_GENERATED"]

    holding_server.release.set()
    sender.join(GUARD)
    assert "error" not in outcome
    [envelope] = holding_server.messages
    assert envelope.rcpt_tos == ["arjun@example.com"]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.sending_until, invoice.send_token) == ("SENT", None, "")
    assert _actions(invoice) == ["INVOICE_GENERATED", "EMAIL_SENT", "INVOICE_SENT"]

    again = _cancel(marketing_client, invoice)

    assert (again.status_code, again.json()["status"]) == (200, "CANCELLED")
    assert _actions(invoice)[-1] == "INVOICE_CANCELLED"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_send_while_the_first_is_on_its_way_sends_nothing_more(
    marketing_client, marketing, holding_server
):
    invoice = _invoice(actor=marketing)
    sender, outcome = _send_in_background(invoice, marketing)
    assert holding_server.arrived.wait(GUARD)

    second = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert (second.status_code, second.json()["code"]) == (409, "invoice_being_sent")
    holding_server.release.set()
    sender.join(GUARD)
    assert "error" not in outcome
    assert len(holding_server.messages) == 1
    assert _actions(invoice) == ["INVOICE_GENERATED", "EMAIL_SENT", "INVOICE_SENT"]


@pytest.mark.django_db
def test_a_cancel_that_committed_before_the_send_stops_it(marketing_client, marketing, smtp_server):
    invoice = _invoice(actor=marketing)
    _cancel(marketing_client, invoice)

    response = marketing_client.post(f"/api/invoices/{invoice.pk}/send")

    assert (response.status_code, response.json()["code"]) == (409, "invoice_not_sendable")
    assert smtp_server.messages == []
    assert _actions(invoice) == ["INVOICE_GENERATED", "INVOICE_CANCELLED"]
    invoice.refresh_from_db()
    assert (invoice.sending_until, invoice.send_token) == (None, "")


@pytest.mark.django_db
def test_a_send_the_mail_server_refused_frees_the_invoice_for_a_cancel_at_once(
    marketing_client, marketing, smtp_server
):
    smtp_server.refuse = True
    invoice = _invoice(actor=marketing)

    send = marketing_client.post(f"/api/invoices/{invoice.pk}/send")
    cancel = _cancel(marketing_client, invoice)

    assert (send.status_code, cancel.status_code) == (502, 200)
    assert _actions(invoice) == ["INVOICE_GENERATED", "EMAIL_FAILED", "INVOICE_CANCELLED"]
    assert smtp_server.messages == []


@pytest.mark.django_db
def test_a_send_whose_process_died_holds_the_invoice_only_until_its_lease_runs_out(
    marketing_client, marketing, smtp_server, time_machine
):
    time_machine.move_to(datetime.datetime(2026, 5, 4, 9, 0, tzinfo=datetime.UTC), tick=False)
    invoice = _invoice(actor=marketing)
    # What a sender killed mid-send leaves behind: its claim.
    Invoice.objects.filter(pk=invoice.pk).update(
        sending_until=timezone.now() + SEND_LEASE, send_token="dead-sender"
    )

    held = _cancel(marketing_client, invoice)
    time_machine.shift(SEND_LEASE)
    freed = _cancel(marketing_client, invoice)

    assert (held.status_code, held.json()["code"]) == (409, "invoice_being_sent")
    assert (freed.status_code, freed.json()["status"]) == (200, "CANCELLED")
    assert smtp_server.messages == []
