"""Alert evaluation, claimed state changes, and maintenance mutes.

The exactly-once pattern is healthchecks' `sendalerts`: a change of state is claimed with
`UPDATE alerts_alertstate SET … WHERE id = … AND version = <seen>` and only the evaluator whose
UPDATE touched one row writes the notification rows (the outbox), in the same transaction. They
are handed to delivery (alerts.delivery) when it commits. Acknowledgement and escalation are in
alerts.acks; mutes, silences and inhibition decide in alerts.suppression what is sent.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.actors import Actor, acting_user
from alerts.acks import ack_lapse_cutoff, actor_name, escalate_unacknowledged, is_acknowledged
from alerts.channels import EMAIL, escalation_channels
from alerts.delivery import publish
from alerts.models import (
    AlertState,
    AlertStatus,
    CriticalEvent,
    MaintenanceMute,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from alerts.outbox import duration_text, queue_notifications, rule_channels, site_link
from alerts.rules import RULES, Observation, Rule
from alerts.suppression import INHIBITING_RULES, end_window, suppression_for
from audit.chain import latest_checkpoint
from audit.models import Action, AuditLog, Severity
from audit.services import AuditEntry, audit_record
from core.timefmt import format_datetime

logger = logging.getLogger(__name__)

CRITICAL_RULE = "critical_event"
DIGEST_RULE = "daily_digest"
# CRITICAL rows older than this when first seen (e.g. history before alerting was switched on)
# are not announced one by one.
CRITICAL_LOOKBACK = timedelta(hours=24)
# A summary names counts per action over at most this many events; the rest go in the next one.
CRITICAL_SUMMARY_LIMIT = 10000


# --- Evaluation -----------------------------------------------------------------------------


def evaluate_rules(*, now: datetime | None = None) -> list[int]:
    """Evaluate every rule once; return the ids of the notifications this call queued."""
    now = now or timezone.now()
    queued: list[int] = []
    # Rules that inhibit others first: an error rate and an unhealthy health check that start
    # together must not page twice, and an inhibited alert is announced in the same evaluation
    # in which what inhibited it resolves.
    for rule in sorted(RULES, key=lambda rule: rule.name not in INHIBITING_RULES):
        try:
            observation = rule.check(now)
        except Exception as exc:
            # One broken measurement must not silence the other rules; it still reaches Sentry.
            logger.exception("alerts: rule %s failed to evaluate", rule.name)
            _capture(exc)
            continue
        if observation is not None:
            queued += apply_observation(rule=rule, observation=observation, now=now)
    queued += process_critical_events(now=now)
    queued += send_daily_digest_if_due(now=now)
    queued += escalate_unacknowledged(now=now)
    return queued


def apply_observation(*, rule: Rule, observation: Observation, now: datetime) -> list[int]:
    """Move the rule's alert to what the observation says; notify on a claimed change or repeat."""
    state = _state(rule.name, rule.name)
    since: datetime | None

    @functools.cache
    def suppressed() -> str | None:
        # Asked only when something is to be sent: most evaluations change nothing.
        return suppression_for(rule=rule.name, fingerprint=state.fingerprint, now=now)

    if observation.firing:
        if state.clear_since is not None:
            # It flapped back before resolving: still the same alert.
            AlertState.objects.filter(pk=state.pk, version=state.version).update(clear_since=None)
        if state.state != AlertStatus.FIRING:
            kind, new_state, since = NotificationKind.FIRING, AlertStatus.FIRING, now
        elif state.announced_at is None and suppressed() is None:
            # It fired while muted, silenced or inhibited and nobody has been told: now they are.
            kind, new_state, since = NotificationKind.FIRING, AlertStatus.FIRING, state.firing_since
        elif is_acknowledged(state, now=now):
            return []  # a founder is on it: no repeats until it resolves or ALERT_ACK_HOURS pass
        elif state.last_notified_at is None or now - state.last_notified_at >= rule.repeat:
            kind, new_state, since = NotificationKind.REPEAT, AlertStatus.FIRING, state.firing_since
        else:
            return []
    elif state.state == AlertStatus.FIRING:
        clear_since = state.clear_since or now
        if now - clear_since < timedelta(minutes=settings.ALERT_RESOLVE_AFTER_MINUTES):
            if state.clear_since is None:
                AlertState.objects.filter(
                    pk=state.pk, version=state.version, clear_since__isnull=True
                ).update(clear_since=now)
            return []
        kind, new_state, since = NotificationKind.RESOLVED, AlertStatus.RESOLVED, None
    else:
        return []

    title, body, facts = observation.title, observation.body, dict(observation.facts)
    if kind == NotificationKind.RESOLVED:
        title = f"Resolved: {state.summary or rule.name}"
        body = f"{observation.title}. {observation.body}".strip()
        if state.firing_since:
            facts["firingFor"] = duration_text((state.clear_since or now) - state.firing_since)
    elif state.state == AlertStatus.FIRING and state.firing_since:
        facts["firingFor"] = duration_text(now - state.firing_since)
    if kind == NotificationKind.REPEAT and state.acknowledged_by_id:
        facts["acknowledgedBy"] = actor_name(state.acknowledged_by)  # and the pause has lapsed

    version = state.version + 1
    fields: dict[str, Any] = {
        "state": new_state,
        "version": F("version") + 1,
        "summary": observation.title[:500] if observation.firing else state.summary,
        "details": facts,
        "firing_since": since,
        "clear_since": None,
        "last_change_at": now if kind != NotificationKind.REPEAT else state.last_change_at,
        "last_notified_at": now,
        "last_evaluated_at": now,
    }
    channels = rule_channels(rule.channels)
    status = suppressed()
    claim = AlertState.objects.filter(pk=state.pk, state=state.state, version=state.version)
    if state.state != AlertStatus.FIRING:
        fields.update(_new_episode(version, announced_at=None if status else now))
    elif kind == NotificationKind.FIRING:
        fields["announced_at"] = now
    elif kind == NotificationKind.REPEAT:
        # An acknowledgement that committed since `state` was read still stops this repeat.
        claim = claim.filter(
            Q(acknowledged_at__isnull=True) | Q(acknowledged_at__lte=ack_lapse_cutoff(now))
        )
    else:  # RESOLVED: nothing is left to acknowledge or escalate
        fields["announced_at"] = None
        if state.escalated_at:
            channels += escalation_channels()  # whoever was paged hears that it is over
        if state.announced_at is not None and status == NotificationStatus.INHIBITED:
            status = None  # inhibition stops pages on top of a bigger one, not "it is over"
        elif state.announced_at is None and status is None:
            channels = []  # nobody heard it fire, so nobody is told it stopped
    firing = kind != NotificationKind.RESOLVED

    with transaction.atomic():
        if claim.update(**fields) != 1:
            return []  # another evaluator claimed this change and notifies for it
        return queue_notifications(
            key=f"{state.fingerprint}:{version}",
            fingerprint=state.fingerprint,
            rule=rule.name,
            kind=kind,
            severity=observation.severity if firing else "info",
            title=title,
            body=body,
            facts=facts,
            link=site_link("/admin/alerts/alertstate/"),
            channels=channels,
            now=now,
            suppressed=status,
            ack_version=version if firing else None,
        )


def _new_episode(version: int, *, announced_at: datetime | None) -> dict[str, Any]:
    return {
        "episode_version": version,
        "announced_at": announced_at,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "escalated_at": None,
    }


def critical_event_recorded(row: AuditLog) -> None:
    """Called by the audit service once a CRITICAL row is committed: evaluate rule 1 now.

    With the broker down, neither this enqueue nor beat works, so the rule is evaluated here and
    its notification rows wait in the outbox until the sweep can hand them to a worker.
    """
    from alerts.tasks import process_critical_events as task

    if not publish(task):
        logger.warning("alerts: broker unavailable; evaluating critical event %s inline", row.pk)
        process_critical_events(enqueue=False)


def process_critical_events(*, now: datetime | None = None, enqueue: bool = True) -> list[int]:
    """Rule 1: announce CRITICAL audit rows; a burst becomes one message plus one summary.

    The first critical event after a quiet spell is announced at once and opens a grouping window
    (ALERT_CRITICAL_GROUP_SECONDS). Events that arrive during the window are announced together,
    in one summary, when it closes. Claiming the next `AlertState.version` is what lets one
    evaluator, and only one, mark the pending events as announced.
    """
    now = now or timezone.now()
    _record_critical_events(now=now)
    state = _state(CRITICAL_RULE, CRITICAL_RULE)
    window = timedelta(seconds=settings.ALERT_CRITICAL_GROUP_SECONDS)
    if (
        state.state == AlertStatus.FIRING
        and state.last_notified_at is not None
        and now < state.last_notified_at + window
    ):
        return []
    pending = CriticalEvent.objects.filter(announced_at__isnull=True).order_by("audit_id")
    if state.state != AlertStatus.FIRING:
        events = list(pending[:1])
    else:
        events = list(pending[:CRITICAL_SUMMARY_LIMIT])
        if not events:
            # The burst is over: back to quiet, silently (an event has nothing to "resolve").
            AlertState.objects.filter(pk=state.pk, version=state.version).update(
                state=AlertStatus.RESOLVED,
                version=F("version") + 1,
                last_change_at=now,
                last_evaluated_at=now,
            )
    if not events:
        return []
    return _announce_critical(state, events, now=now, enqueue=enqueue)


def _record_critical_events(*, now: datetime) -> None:
    """Note every recent CRITICAL audit row that rule 1 has not seen yet (idempotent)."""
    unseen = (
        AuditLog.objects.filter(severity=Severity.CRITICAL, created_at__gte=now - CRITICAL_LOOKBACK)
        .filter(~Exists(CriticalEvent.objects.filter(audit_id=OuterRef("pk"))))
        .values_list("id", "action", "entity_type", "entity_id", "request_id", "created_at")
    )
    CriticalEvent.objects.bulk_create(
        [
            CriticalEvent(
                audit_id=pk,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                request_id=request_id,
                created_at=created_at,
            )
            for pk, action, entity_type, entity_id, request_id, created_at in unseen
        ],
        ignore_conflicts=True,  # another evaluator noted the same row a moment ago
    )
    CriticalEvent.objects.filter(announced_at__lt=now - 2 * CRITICAL_LOOKBACK).delete()


def _announce_critical(
    state: AlertState, events: list[CriticalEvent], *, now: datetime, enqueue: bool
) -> list[int]:
    if len(events) == 1:
        event = events[0]
        kind = NotificationKind.CRITICAL
        title = f"Critical event: {event.action} (audit #{event.audit_id})"
        body = "A critical event was recorded in the audit trail."
        facts = {
            "action": event.action,
            "entity": f"{event.entity_type} {event.entity_id}".strip() or "-",
            "auditId": event.audit_id,
        }
        if event.request_id:
            facts["requestId"] = event.request_id
        outcome = _outcome_of(event.audit_id)
        if outcome:
            facts["outcome"] = outcome
        link = site_link(f"/admin/audit/auditlog/{event.audit_id}/change/")
    else:
        kind = NotificationKind.SUMMARY
        by_action = Counter(event.action for event in events)
        title = f"{len(events)} more critical events since the last alert"
        body = "Critical events recorded during the grouping window, by action."
        facts = {action: count for action, count in by_action.most_common()}
        facts["auditIds"] = f"{events[0].audit_id}-{events[-1].audit_id}"
        link = site_link("/admin/audit/auditlog/?severity__exact=CRITICAL")

    version = state.version + 1
    suppressed = suppression_for(rule=CRITICAL_RULE, fingerprint=state.fingerprint, now=now)
    # A burst that follows one nobody acknowledged (nor escalated yet) continues its episode:
    # the earlier links still acknowledge both, and escalation counts from the first message.
    unanswered = (
        state.announced_at is not None
        and state.acknowledged_at is None
        and state.escalated_at is None
    )
    if state.state == AlertStatus.FIRING or unanswered:
        episode = {"announced_at": state.announced_at or (None if suppressed else now)}
    else:
        episode = _new_episode(version, announced_at=None if suppressed else now)

    with transaction.atomic():
        claimed = AlertState.objects.filter(pk=state.pk, version=state.version).update(
            state=AlertStatus.FIRING,
            version=F("version") + 1,
            summary=title[:500],
            details=facts,
            firing_since=state.firing_since if state.state == AlertStatus.FIRING else now,
            last_change_at=now,
            last_notified_at=now,
            last_evaluated_at=now,
            **episode,
        )
        if claimed != 1:
            return []
        CriticalEvent.objects.filter(pk__in=[event.pk for event in events]).update(announced_at=now)
        return queue_notifications(
            key=f"{state.fingerprint}:{version}",
            fingerprint=state.fingerprint,
            rule=CRITICAL_RULE,
            kind=kind,
            severity="critical",
            title=title,
            body=body,
            facts=facts,
            link=link,
            channels=rule_channels(()),
            now=now,
            suppressed=suppressed,
            ack_version=version,
            enqueue=enqueue,
        )


def _outcome_of(audit_id: int) -> str:
    """What a failed operation's row says happened (`rolled_back`, `unknown`, …), for the alert:
    "outcome unknown" asks for a check, "rolled back" for a retry. A short machine word, never
    free text, so no personal data can ride along."""
    outcome = (
        AuditLog.objects.filter(pk=audit_id).values_list("metadata__outcome", flat=True).first()
    )
    if isinstance(outcome, str) and outcome.replace("_", "").isalnum() and len(outcome) <= 32:
        return outcome
    return ""


def send_daily_digest_if_due(*, now: datetime | None = None) -> list[int]:
    """Rule 6: once a day, from ALERT_DIGEST_HOUR local time, e-mail errors and open alerts."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.ALERT_DIGEST_HOUR:
        return []
    day = local.date().isoformat()
    state = _state(DIGEST_RULE, DIGEST_RULE)
    if state.details.get("lastDate") == day:
        return []

    since = now - timedelta(hours=24)
    errors = Counter(
        AuditLog.objects.filter(
            created_at__gt=since, severity__in=[Severity.ERROR, Severity.CRITICAL]
        ).values_list("severity", "action")
    )
    open_alerts = list(
        AlertState.objects.filter(state=AlertStatus.FIRING)
        .exclude(rule__in=[DIGEST_RULE])
        .values_list("fingerprint", "summary")
    )
    failed = Notification.objects.filter(
        status=NotificationStatus.FAILED, created_at__gt=since
    ).count()
    facts: dict[str, Any] = {
        "date": day,
        "openAlerts": len(open_alerts),
        "failedDeliveries": failed,
    }
    for (severity, action), count in sorted(errors.items()):
        facts[f"{severity} {action}"] = count
    lines = [f"Errors in the last 24 hours: {sum(errors.values())}."]
    lines += [f"Open alert: {fp} — {summary}" for fp, summary in open_alerts]
    if not open_alerts:
        lines.append("No alert is firing.")
    checkpoint = checkpoint_witness()
    if checkpoint:
        facts["auditCheckpoint"] = checkpoint["witness"]
        lines += ["", checkpoint["text"]]

    with transaction.atomic():
        claimed = AlertState.objects.filter(pk=state.pk, version=state.version).update(
            version=F("version") + 1, details={"lastDate": day}, last_notified_at=now
        )
        if claimed != 1:
            return []
        fingerprint = f"{DIGEST_RULE}:{day}"
        key = f"{fingerprint}:{state.version + 1}"
        common: dict[str, Any] = {
            "fingerprint": fingerprint,
            "rule": DIGEST_RULE,
            "kind": NotificationKind.DIGEST,
            "severity": "info",
            "now": now,
            "suppressed": suppression_for(rule=DIGEST_RULE, fingerprint=fingerprint, now=now),
        }
        queued = queue_notifications(
            key=key,
            title=f"Daily digest {day}",
            body="\n".join(lines),
            facts=facts,
            link=site_link("/dashboard/activity"),
            channels=rule_channels((EMAIL,)),
            **common,
        )
        if checkpoint:
            # The head also goes to the webhooks, so that a chat history holds witnesses too.
            queued += queue_notifications(
                key=f"{key}:checkpoint",
                title=f"Audit checkpoint {day}",
                body=checkpoint["text"],
                facts={"auditCheckpoint": checkpoint["witness"]},
                link="",
                channels=[c for c in rule_channels(()) if c.kind != EMAIL],
                **common,
            )
        return queued


def checkpoint_witness() -> dict[str, str] | None:
    """The latest audit chain checkpoint as founders keep it: `SEQ:HASH` and how to check it."""
    checkpoint = latest_checkpoint()
    if not checkpoint or not checkpoint["witness"]:
        return None
    at = format_datetime(checkpoint["at"])
    return {
        "witness": checkpoint["witness"],
        "text": (
            f"Audit chain checkpoint of {at}: {checkpoint['witness']}\n"
            "Keep this message. To check the audit trail against it: "
            f"python manage.py audit_verify --checkpoint {checkpoint['witness']}"
        ),
    }


def _state(fingerprint: str, rule: str) -> AlertState:
    # get_or_create retries the read after losing an insert race on the unique fingerprint.
    state, _ = AlertState.objects.get_or_create(fingerprint=fingerprint, defaults={"rule": rule})
    return state


# --- Mutes ----------------------------------------------------------------------------------


def mute_create(
    *, actor: Actor, ends_at: datetime, reason: str, starts_at: datetime | None = None
) -> MaintenanceMute:
    """Mute alert notifications for a maintenance window (founders, from the admin)."""
    with transaction.atomic():
        mute = MaintenanceMute.objects.create(
            starts_at=starts_at or timezone.now(),
            ends_at=ends_at,
            reason=reason,
            created_by=acting_user(actor),
        )
        audit_record(
            AuditEntry(
                Action.ALERTS_MUTED,
                description=f"Alert notifications muted until {ends_at:%Y-%m-%d %H:%M %Z}",
                entity=mute,
                metadata={"startsAt": mute.starts_at.isoformat(), "endsAt": ends_at.isoformat()},
                actor=actor,
            ),
        )
    return mute


def mute_end(*, mute: MaintenanceMute, actor: Actor) -> bool:
    """End a mute early; False if it had already ended."""
    with transaction.atomic():
        ended = end_window(mute, now=timezone.now())
        if ended:
            audit_record(
                AuditEntry(
                    Action.ALERTS_UNMUTED,
                    description="Alert notifications unmuted",
                    entity=mute,
                    actor=actor,
                ),
            )
    return ended


def _capture(exc: BaseException) -> None:
    import sentry_sdk

    sentry_sdk.capture_exception(exc)
