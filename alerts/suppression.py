"""What keeps a notification from being sent: the maintenance mute, silences and inhibition.

All three leave alert state alone: an alert still fires and resolves, and its notification rows
are written as usual, with the status MUTED, SILENCED or INHIBITED instead of PENDING. An alert
that nobody has heard of yet is announced at the first evaluation after the suppression ends.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.actors import Actor, acting_user
from alerts.models import AlertState, AlertStatus, MaintenanceMute, NotificationStatus, Silence
from audit.models import Action
from audit.services import AuditEntry, audit_record

# Alertmanager's inhibit_rules: while a source alert fires, the targets do not page on top of it.
# An unhealthy health check explains a high error rate or a slow database (a database that fails
# its connection check makes health unhealthy on its own), and the founders are already paged
# for it on every channel.
INHIBITIONS: dict[str, tuple[str, ...]] = {
    "error_rate": ("health_unhealthy",),
    "slow_database": ("health_unhealthy",),
}
INHIBITING_RULES = frozenset(source for sources in INHIBITIONS.values() for source in sources)


def suppression_for(*, rule: str, fingerprint: str, now: datetime) -> str | None:
    """MUTED, SILENCED or INHIBITED when a notification of this alert must not be sent now."""
    if MaintenanceMute.objects.filter(starts_at__lte=now, ends_at__gt=now).exists():
        return NotificationStatus.MUTED
    if (
        active_silences(now=now)
        .filter(rule=rule)
        .filter(Q(fingerprint="") | Q(fingerprint=fingerprint))
        .exists()
    ):
        return NotificationStatus.SILENCED
    sources = INHIBITIONS.get(rule)
    if sources and AlertState.objects.filter(rule__in=sources, state=AlertStatus.FIRING).exists():
        return NotificationStatus.INHIBITED
    return None


def active_silences(*, now: datetime | None = None) -> QuerySet[Silence]:
    now = now or timezone.now()
    return Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)


def silence_create(
    *,
    actor: Actor,
    rule: str,
    ends_at: datetime,
    reason: str,
    fingerprint: str = "",
    starts_at: datetime | None = None,
) -> Silence:
    """Silence one rule (or one fingerprint of it) until `ends_at` (founders, from the admin)."""
    silence = Silence(
        rule=rule,
        fingerprint=fingerprint,
        starts_at=starts_at or timezone.now(),
        ends_at=ends_at,
        reason=reason,
        created_by=acting_user(actor),
    )
    silence.clean()  # a fingerprint of another rule would silence nothing
    with transaction.atomic():
        silence.save(force_insert=True)
        audit_record(
            AuditEntry(
                Action.ALERT_SILENCED,
                description=(
                    f"Alerts of {fingerprint or rule} silenced until {ends_at:%Y-%m-%d %H:%M %Z}"
                ),
                entity=silence,
                metadata={
                    "rule": rule,
                    "fingerprint": fingerprint,
                    "startsAt": silence.starts_at.isoformat(),
                    "endsAt": ends_at.isoformat(),
                    "reason": reason,
                },
                actor=actor,
            ),
        )
    return silence


def end_window(window: MaintenanceMute | Silence, *, now: datetime) -> bool:
    """End a mute or silence at `now` in the caller's transaction; False if it had already ended."""
    return bool(
        type(window)
        .objects.filter(pk=window.pk, ends_at__gt=now)
        # One that has not started yet keeps ends_at after starts_at.
        .update(ends_at=Greatest(now, F("starts_at") + timedelta(seconds=1)))
    )


def silence_end(*, silence: Silence, actor: Actor) -> bool:
    """End a silence now; False if it had already ended."""
    with transaction.atomic():
        ended = end_window(silence, now=timezone.now())
        if ended:
            audit_record(
                AuditEntry(
                    Action.ALERT_SILENCE_ENDED,
                    description=f"Silence of {silence.fingerprint or silence.rule} ended",
                    entity=silence,
                    metadata={"rule": silence.rule, "fingerprint": silence.fingerprint},
                    actor=actor,
                ),
            )
    return ended
