"""Alert state per rule fingerprint, the notification outbox, maintenance mutes and silences."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class AlertStatus(models.TextChoices):
    NORMAL = "normal"
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertState(models.Model):
    """Where one alert (a rule, or a rule plus a key) stands.

    Every change is claimed with `UPDATE … WHERE state = <old> AND version = <old>` and a check of
    the row count, so two evaluators that see the same change produce one notification between
    them. `version` grows with each claimed change and is part of each notification's dedup key.
    """

    fingerprint = models.CharField(max_length=200, unique=True)
    rule = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.NORMAL)
    version = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    firing_since = models.DateTimeField(null=True, blank=True)
    # While firing: when the condition was first seen clear. It resolves once it stays clear for
    # ALERT_RESOLVE_AFTER_MINUTES, so a flapping condition is one alert, not a stream of pairs.
    clear_since = models.DateTimeField(null=True, blank=True)
    last_change_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    # One firing, from the claim that opened it, is an "episode": acknowledgement and escalation
    # belong to it. `episode_version` is the version that opened it; a link signed for an older
    # version belongs to an earlier firing.
    episode_version = models.PositiveIntegerField(default=0)
    # When people were first told about this episode. Null while every message so far was muted,
    # silenced or inhibited (nobody has heard of it: the next unsuppressed evaluation tells them),
    # and again once a condition alert resolves (nothing is left to acknowledge or escalate).
    announced_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The server state that makes each acknowledge link single-use: an acknowledgement stores the
    # version the alert had then, and every link signed for that version or an older one is spent.
    ack_version = models.PositiveIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rule", "fingerprint"]

    def __str__(self) -> str:
        return f"{self.fingerprint}: {self.state}"


class CriticalEvent(models.Model):
    """A CRITICAL audit row seen by rule 1, and whether a notification has covered it yet.

    Not an id cursor over the audit log: a row written inside a long business transaction gets
    its id before rows that commit earlier, and a cursor would already have passed it. The
    evaluation picks up every recent CRITICAL row that has no entry here, whenever it commits.
    """

    audit_id = models.BigIntegerField(unique=True)
    action = models.CharField(max_length=64)
    entity_type = models.CharField(max_length=64, blank=True)
    entity_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    announced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["audit_id"]
        indexes = [
            models.Index(
                fields=["audit_id"],
                condition=models.Q(announced_at__isnull=True),
                name="alerts_critical_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"audit #{self.audit_id} {self.action}"


class NotificationKind(models.TextChoices):
    FIRING = "FIRING"
    REPEAT = "REPEAT"
    RESOLVED = "RESOLVED"
    CRITICAL = "CRITICAL"
    SUMMARY = "SUMMARY"
    DIGEST = "DIGEST"
    ESCALATION = "ESCALATION"
    ACKNOWLEDGED = "ACKNOWLEDGED"


class NotificationStatus(models.TextChoices):
    PENDING = "PENDING"
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    # Recorded, never sent: during a maintenance mute, under a silence of its rule, or while an
    # alert that explains it fires (inhibition).
    MUTED = "MUTED"
    SILENCED = "SILENCED"
    INHIBITED = "INHIBITED"


SUPPRESSED_STATUSES = (
    NotificationStatus.MUTED,
    NotificationStatus.SILENCED,
    NotificationStatus.INHIBITED,
)


class Notification(models.Model):
    """One message for one channel: the outbox row that a Celery task delivers.

    A row is written in the same transaction as the state change it reports, so it can neither be
    lost nor sent without its cause. `dedup_key` is unique: the same change cannot be queued twice.
    Webhook URLs are secrets (the token is in the path), so a row names its channel by `channel`
    and `target` (a short hash of the URL); the URL itself stays in the environment.
    """

    dedup_key = models.CharField(max_length=255, unique=True)
    fingerprint = models.CharField(max_length=200)
    rule = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    severity = models.CharField(max_length=16, default="error")
    channel = models.CharField(max_length=16)  # email, slack, discord, json
    target = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=300)
    body = models.TextField()
    facts = models.JSONField(default=dict, blank=True)
    link = models.CharField(max_length=500, blank=True)
    # The alert version an acknowledge link in this message is signed for; null: no link (resolved
    # notices, digests, acknowledgements). The link itself is signed when the message is sent, so
    # that it expires counting from then and is stored nowhere.
    ack_version = models.PositiveIntegerField(null=True, blank=True)

    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="alerts_notif_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.rule} via {self.channel}: {self.status}"


class MaintenanceMute(models.Model):
    """While a mute is on, alerts change state as usual but their notifications are not sent."""

    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="mute_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Mute {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%Y-%m-%d %H:%M}: {self.reason}"
        )


class Silence(models.Model):
    """While a silence is on, the alerts of one rule (or one fingerprint) are recorded, not sent."""

    rule = models.CharField(max_length=64)
    fingerprint = models.CharField(
        max_length=200,
        blank=True,
        help_text="Empty: every alert of the rule. Otherwise one alert: its fingerprint, the "
        "rule's name or the rule's name, a colon and a key.",
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="silence_ends_after_start",
                violation_error_message="A silence must end after it starts.",
            ),
        ]
        indexes = [models.Index(fields=["rule", "ends_at"], name="alerts_silence_rule_idx")]

    def __str__(self) -> str:
        scope = self.fingerprint or self.rule
        return f"Silence {scope} until {self.ends_at:%Y-%m-%d %H:%M}: {self.reason}"

    def clean(self) -> None:
        if self.fingerprint and not (
            self.fingerprint == self.rule or self.fingerprint.startswith(f"{self.rule}:")
        ):
            raise ValidationError(
                {"fingerprint": f"Alerts of {self.rule} have the fingerprint {self.rule}[:key]."}
            )
