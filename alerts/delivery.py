"""The outbox: hand notification rows to the worker, send them once, retry what can be retried.

A row is sent by whoever claims it (`PENDING → SENDING` with a conditional UPDATE), so a row
queued twice (an on-commit enqueue and a sweep) is still sent once. Sending never runs inside a
transaction. A failed send is written back with the time of its next attempt; the beat sweep
hands due rows to the worker again, so retries survive restarts and broker outages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts.actors import Actor
from alerts.channels import Channel, DeliveryError, Message, find_channel, send
from alerts.models import Notification, NotificationStatus
from alerts.tokens import ack_url
from audit.services import AuditEntry, audit_record

logger = logging.getLogger(__name__)

# How long a sender may hold a claimed row before a sweep hands it to someone else (the worker
# died mid-send): longer than any adapter's timeout.
SEND_LEASE = timedelta(minutes=5)


def enqueue_deliveries(ids: Iterable[int]) -> int:
    """Hand rows to the worker. A row the broker does not take stays PENDING for the sweep."""
    from alerts.tasks import deliver_notification

    sent = 0
    for pk in ids:
        if not publish(deliver_notification, pk):
            logger.warning("alerts: broker unavailable; notification %s waits for the sweep", pk)
            break  # the rest wait too; no need to pay the connect timeout for each
        sent += 1
    return sent


def publish(task: Any, *args: Any) -> bool:
    # retry=False: with the broker down the row must not hold the caller for the publish retry
    # policy; it waits in the outbox instead. Kombu still retries the connection for up to
    # CELERY_BROKER_CONNECTION_TIMEOUT (2 s), once per call: enqueue_deliveries stops at the
    # first refusal.
    try:
        task.apply_async(args=args, retry=False)
    except (OperationalError, OSError):
        return False
    return True


def deliver_notification(notification_id: int) -> str | None:
    """Send one outbox row if it is due and nobody else holds it; return its new status."""
    now = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, status=NotificationStatus.PENDING, next_attempt_at__lte=now
    ).update(
        status=NotificationStatus.SENDING,
        attempts=F("attempts") + 1,
        claimed_until=now + SEND_LEASE,
    )
    if claimed != 1:
        return None
    row = Notification.objects.get(pk=notification_id)
    channel = find_channel(row.channel, row.target)
    try:
        if channel is None:
            raise DeliveryError("channel is no longer configured", retryable=False)
        _send(channel, row)
    except DeliveryError as err:
        return _record_failure(row, err)
    Notification.objects.filter(pk=row.pk, status=NotificationStatus.SENDING).update(
        status=NotificationStatus.SENT, sent_at=timezone.now(), last_error="", claimed_until=None
    )
    return NotificationStatus.SENT


def _send(channel: Channel, row: Notification) -> None:
    send(
        channel,
        Message(
            title=row.title,
            body=row.body,
            severity=row.severity,
            kind=row.kind,
            rule=row.rule,
            fingerprint=row.fingerprint,
            facts=row.facts,
            link=row.link,
            created_at=row.created_at,
            # Signed now, so that it expires counting from when the message went out.
            ack_url=ack_url(row.fingerprint, row.ack_version) if row.ack_version else "",
        ),
    )


def _record_failure(row: Notification, err: DeliveryError) -> str:
    now = timezone.now()
    give_up_at = row.created_at + timedelta(hours=settings.ALERT_GIVE_UP_HOURS)
    if err.retryable and now < give_up_at:
        delay = backoff_seconds(row.attempts)
        if err.retry_after is not None:
            # A receiver may ask for any wait at all; past our longest backoff the row would sit
            # pending beyond the give-up age, seen by nobody.
            delay = min(err.retry_after, float(settings.ALERT_RETRY_MAX_SECONDS))
        status = NotificationStatus.PENDING
        next_at = now + timedelta(seconds=delay)
    else:
        status, next_at = NotificationStatus.FAILED, now
    logger.warning(
        "alerts: delivery of notification %s via %s failed (%s): %s",
        row.pk,
        row.channel,
        "will retry" if status == NotificationStatus.PENDING else "gave up",
        err.reason[:200],
    )
    Notification.objects.filter(pk=row.pk, status=NotificationStatus.SENDING).update(
        status=status, next_attempt_at=next_at, last_error=err.reason[:2000], claimed_until=None
    )
    return status


def backoff_seconds(attempts: int) -> float:
    """30 s, 60 s, 120 s, … capped at ALERT_RETRY_MAX_SECONDS."""
    base = settings.ALERT_RETRY_BASE_SECONDS
    return float(min(settings.ALERT_RETRY_MAX_SECONDS, base * 2 ** max(0, attempts - 1)))


def sweep_outbox(*, limit: int = 200) -> int:
    """Re-queue due rows and rows whose sender died mid-send; return how many were handed over."""
    now = timezone.now()
    Notification.objects.filter(status=NotificationStatus.SENDING, claimed_until__lt=now).update(
        status=NotificationStatus.PENDING, claimed_until=None
    )
    due = list(
        Notification.objects.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return enqueue_deliveries(due)


def retry_failed(*, ids: list[int], actor: Actor) -> int:
    """Give failed deliveries another go (after the founder fixed a webhook URL, say)."""
    now = timezone.now()
    with transaction.atomic():
        count = Notification.objects.filter(pk__in=ids, status=NotificationStatus.FAILED).update(
            status=NotificationStatus.PENDING, next_attempt_at=now, created_at=now
        )
        if count:
            audit_record(
                AuditEntry(
                    "ALERT_DELIVERY_RETRIED",
                    description=f"{count} failed alert deliveries queued again",
                    metadata={"notificationIds": ids},
                    actor=actor,
                ),
            )
            transaction.on_commit(lambda: enqueue_deliveries(ids))
    return count
