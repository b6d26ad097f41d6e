"""Acknowledging an alert, and escalating one that nobody acknowledged.

An acknowledgement belongs to the alert's present episode (one firing): it stops repeats until the
alert resolves or ALERT_ACK_HOURS pass, stops its escalation, and tells the channels that received
the alert who is on it. An alert announced ALERT_ESCALATE_AFTER_MINUTES ago that nobody has
acknowledged goes, once per episode, to the escalation channels. Both are claimed with conditional
UPDATEs, like every change of alert state: two founders clicking at once, or two evaluators
running at once, make one acknowledgement and one escalation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.actors import Actor
from alerts.channels import Channel, escalation_channels, find_channel
from alerts.models import (
    AlertState,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from alerts.outbox import duration_text, queue_notifications, site_link
from alerts.suppression import suppression_for
from audit.models import Action
from audit.services import AuditEntry, audit_record

# What a link can do now (alerts.views shows each as its own page).
OPEN = "open"  # it acknowledges the alert
ACKNOWLEDGED = "acknowledged"  # a founder has; the pause is running
USED = "used"  # this link (or a newer one) was used for an acknowledgement that has lapsed
CLOSED = "closed"  # the alert resolved, or the link is from an earlier firing

_DELIVERED = (
    NotificationStatus.PENDING,
    NotificationStatus.SENDING,
    NotificationStatus.SENT,
    NotificationStatus.FAILED,
)


@dataclass(frozen=True)
class AckOutcome:
    state: AlertState
    acknowledged: bool  # by this call
    status: str  # link_status after the call


def ack_lapse_cutoff(now: datetime) -> datetime:
    return now - timedelta(hours=settings.ALERT_ACK_HOURS)


def is_acknowledged(state: AlertState, *, now: datetime) -> bool:
    return state.acknowledged_at is not None and state.acknowledged_at > ack_lapse_cutoff(now)


def ack_until(state: AlertState) -> datetime | None:
    if state.acknowledged_at is None:
        return None
    return state.acknowledged_at + timedelta(hours=settings.ALERT_ACK_HOURS)


def link_status(state: AlertState, version: int, *, now: datetime | None = None) -> str:
    """What the link signed for `version` of this alert does if a founder uses it now."""
    now = now or timezone.now()
    if state.announced_at is None or version < state.episode_version:
        return CLOSED
    if is_acknowledged(state, now=now):
        return ACKNOWLEDGED
    if version <= state.ack_version:
        return USED
    return OPEN


def alert_acknowledge(
    *, fingerprint: str, version: int, actor: Actor, now: datetime | None = None
) -> AckOutcome:
    """Acknowledge the alert with the link signed for `version`, once; audited and announced."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = (
            AlertState.objects.filter(
                fingerprint=fingerprint,
                announced_at__isnull=False,
                episode_version__lte=version,
                ack_version__lt=version,
            )
            .filter(Q(acknowledged_at__isnull=True) | Q(acknowledged_at__lte=ack_lapse_cutoff(now)))
            .update(acknowledged_at=now, acknowledged_by=actor, ack_version=F("version"))
        )
        state = AlertState.objects.select_related("acknowledged_by").get(fingerprint=fingerprint)
        if claimed != 1:
            return AckOutcome(state, False, link_status(state, version, now=now))
        until = ack_until(state)
        name = actor_name(actor)
        audit_record(
            AuditEntry(
                Action.ALERT_ACKNOWLEDGED,
                description=f"Alert {fingerprint} acknowledged by {name}",
                entity=state,
                metadata={
                    "rule": state.rule,
                    "fingerprint": fingerprint,
                    "linkVersion": version,
                    "alertVersion": state.ack_version,
                    "pausedUntil": until.isoformat() if until else None,
                },
                actor=actor,
            ),
        )
        queue_notifications(
            key=f"{fingerprint}:{state.version}:ack",
            fingerprint=fingerprint,
            rule=state.rule,
            kind=NotificationKind.ACKNOWLEDGED,
            severity="info",
            title=f"Acknowledged by {name}: {state.summary or state.rule}"[:300],
            body=(
                f"{name} is on it. Repeats of this alert are paused until it resolves or until "
                f"{_local(until)}" + ("." if state.escalated_at else "; it will not be escalated.")
            ),
            facts={"acknowledgedBy": name, "alert": fingerprint},
            link=site_link("/admin/alerts/alertstate/"),
            channels=_channels_told(state),
            now=now,
        )
    return AckOutcome(state, True, link_status(state, version, now=now))


def _channels_told(state: AlertState) -> list[Channel]:
    """The channels that were sent this episode's messages (escalation channels included)."""
    pairs = (
        Notification.objects.filter(
            fingerprint=state.fingerprint,
            created_at__gte=state.announced_at,
            status__in=_DELIVERED,
        )
        .exclude(kind=NotificationKind.ACKNOWLEDGED)
        .values_list("channel", "target")
        .order_by("channel", "target")
        .distinct()
    )
    channels = [find_channel(kind, target) for kind, target in pairs]
    return [channel for channel in channels if channel is not None]


def escalate_unacknowledged(*, now: datetime | None = None) -> list[int]:
    """Send alerts announced ALERT_ESCALATE_AFTER_MINUTES ago and not acknowledged to the
    escalation channels: once per episode, whoever evaluates."""
    now = now or timezone.now()
    minutes = settings.ALERT_ESCALATE_AFTER_MINUTES
    channels = escalation_channels()
    if not channels or minutes <= 0:
        return []
    cutoff = now - timedelta(minutes=minutes)
    due = AlertState.objects.filter(
        announced_at__lte=cutoff, acknowledged_at__isnull=True, escalated_at__isnull=True
    ).order_by("announced_at")
    queued: list[int] = []
    for state in due:
        if suppression_for(rule=state.rule, fingerprint=state.fingerprint, now=now):
            # Silenced, muted or inhibited since it was announced: a founder is already aware,
            # or something bigger pages. It escalates when that ends, if still unanswered.
            continue
        with transaction.atomic():
            claimed = AlertState.objects.filter(
                pk=state.pk,
                announced_at__lte=cutoff,
                acknowledged_at__isnull=True,
                escalated_at__isnull=True,
            ).update(escalated_at=now)
            if claimed != 1:
                continue  # acknowledged, resolved or escalated by another evaluator meanwhile
            facts = dict(state.details)
            # announced_at__lte above leaves out the alerts never announced.
            announced_at = cast(datetime, state.announced_at)
            facts["unacknowledgedFor"] = duration_text(now - announced_at)
            queued += queue_notifications(
                key=f"{state.fingerprint}:{state.version}:escalation",
                fingerprint=state.fingerprint,
                rule=state.rule,
                kind=NotificationKind.ESCALATION,
                severity=_severity(state),
                title=f"Not acknowledged: {state.summary or state.rule}"[:300],
                body=(
                    f"Nobody acknowledged this alert within {minutes:g} minutes of "
                    f"{_local(state.announced_at)}."
                ),
                facts=facts,
                link=site_link("/admin/alerts/alertstate/"),
                channels=channels,
                now=now,
                ack_version=state.version,
            )
    return queued


def _severity(state: AlertState) -> str:
    latest = (
        Notification.objects.filter(
            fingerprint=state.fingerprint, created_at__gte=state.announced_at
        )
        .exclude(kind__in=[NotificationKind.RESOLVED, NotificationKind.ACKNOWLEDGED])
        .order_by("-id")
        .values_list("severity", flat=True)
        .first()
    )
    return latest or "error"


def actor_name(user: Actor) -> str:
    # A founder's name is staff data and may go to the founders' chat; nothing else of theirs.
    return (getattr(user, "name", "") or "").strip() or "a founder"


def _local(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}" if moment else "-"
