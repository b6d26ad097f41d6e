"""Writing notification rows: one per channel, in the caller's transaction, enqueued on commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from alerts.channels import Channel, configured_channels
from alerts.delivery import enqueue_deliveries
from alerts.models import Notification, NotificationStatus


def rule_channels(kinds: tuple[str, ...]) -> list[Channel]:
    """The founders' channels of these kinds; all of them when `kinds` is empty."""
    return [c for c in configured_channels() if not kinds or c.kind in kinds]


def queue_notifications(
    *,
    key: str,
    fingerprint: str,
    rule: str,
    kind: str,
    severity: str,
    title: str,
    body: str,
    facts: dict[str, Any],
    link: str,
    channels: list[Channel],
    now: datetime,
    suppressed: str | None = None,
    ack_version: int | None = None,
    enqueue: bool = True,
) -> list[int]:
    """Write one outbox row per channel; `key` (unique per change) makes each dedup key.

    `suppressed` (MUTED, SILENCED, INHIBITED) records the rows without sending them.
    """
    seen: set[tuple[str, str]] = set()
    rows = []
    for channel in channels:
        if (channel.kind, channel.target) in seen:
            continue  # the same webhook listed twice (e.g. in both lists) gets one message
        seen.add((channel.kind, channel.target))
        rows.append(
            Notification(
                dedup_key=f"{key}:{channel.kind}:{channel.target}"[:255],
                fingerprint=fingerprint,
                rule=rule,
                kind=kind,
                severity=severity,
                channel=channel.kind,
                target=channel.target,
                target_label=channel.label[:200],
                title=title[:300],
                body=body,
                facts=facts,
                link=link,
                ack_version=ack_version,
                status=suppressed or NotificationStatus.PENDING,
                next_attempt_at=now,
                created_at=now,
            )
        )
    for row in rows:
        row.save(force_insert=True)
    ids = [row.pk for row in rows if row.status == NotificationStatus.PENDING]
    if ids and enqueue:
        transaction.on_commit(lambda: enqueue_deliveries(ids))
    return [row.pk for row in rows]


def site_link(path: str) -> str:
    base = settings.ALERT_BASE_URL.rstrip("/")
    return f"{base}{path}" if base else ""


def duration_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
