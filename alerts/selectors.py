"""Reads for the founders' views of alerting (the activity dashboard, the admin)."""

from __future__ import annotations

from django.db.models import QuerySet

from alerts.models import AlertState, AlertStatus, Notification


def notification_list(*, status: str | None = None, limit: int = 50) -> QuerySet[Notification]:
    """Newest deliveries first, optionally only SENT, FAILED, PENDING or MUTED ones."""
    qs = Notification.objects.order_by("-id")
    if status:
        qs = qs.filter(status=status)
    return qs[:limit]


def open_alert_list() -> QuerySet[AlertState]:
    """The alerts firing now, the longest-firing first."""
    return AlertState.objects.filter(state=AlertStatus.FIRING).order_by("firing_since")


def alert_state_by_fingerprint(fingerprint: str) -> AlertState | None:
    """The alert with this fingerprint and who acknowledged it, or None when there is none."""
    return (
        AlertState.objects.select_related("acknowledged_by").filter(fingerprint=fingerprint).first()
    )
