from __future__ import annotations

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.permissions import founder_required
from accounts.selectors import user_name_or_none
from alerts.checks import NO_CHANNEL_HINT, NO_CHANNEL_MESSAGE, channel_kinds
from alerts.selectors import notification_list, open_alert_list
from audit.models import Action
from core.fields import MAX_ID
from core.timefmt import format_time, school_now, school_today
from monitoring import live
from monitoring.checks import MONEY, SITE, health_report, http_status
from monitoring.entities import entity_label
from monitoring.selectors import check_states, recent_check_changes
from monitoring.services import record_check_states
from monitoring.status import LABELS, status_rows

# The status page lists this many of the latest changes.
STATUS_CHANGES = 20


@founder_required
@require_GET
def activity_dashboard(request: HttpRequest) -> HttpResponse:
    """The founders' live feed. The page is a shell; static/js/activity.js fills it from the API."""
    context = {
        "api_url": reverse("api-audit-logs"),
        "export_url": reverse("api-audit-logs-export"),
        # Action codes in words, one mapping for the whole page (audit.Action's labels).
        "action_labels": json.dumps(dict(Action.choices), separators=(",", ":")),
        "user_label": _user_label(request.GET.get("userId", "")),
        "entity_label": _entity_label(
            request.GET.get("entityType", ""), request.GET.get("entityId", "")
        ),
        # The page writes times as every other page does ("1 Dec 2026, 14:05 IST"), in the
        # school's zone whatever the browser's: it is given the zone, its label and today.
        "time_zone": settings.TIME_ZONE,
        "zone_label": format_time(school_now()).split(" ", 1)[1],
        "today": school_today().isoformat(),
        "poll_ms": int(settings.ACTIVITY_POLL_SECONDS * 1000),
        "events_url": reverse("monitoring:activity-events"),
        "open_alerts": list(open_alert_list()),
        "deliveries": list(notification_list(limit=10)),
        "no_alert_channel": "" if channel_kinds() else f"{NO_CHANNEL_MESSAGE} {NO_CHANNEL_HINT}",
    }
    return render(request, "monitoring/activity.html", context)


@founder_required
@require_GET
def activity_events(request: HttpRequest) -> HttpResponseBase:
    """The dashboard's doorbell (monitoring.live): an `audit` event whenever new entries committed.

    204 where a stream cannot be held (EventSource then stops trying and the page polls).
    """
    if not live.push_available(request.META) or not live.take_slot():
        return HttpResponse(status=204)
    try:
        bell = live.doorbell()
    except Exception:
        live.release_slot()
        raise
    response = StreamingHttpResponse(live.Stream(bell), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-store"
    # nginx and similar proxies would otherwise hold the events back in their buffers.
    response["X-Accel-Buffering"] = "no"
    return response


def _user_label(user_id: str) -> str:
    """The name for the heading of a per-user timeline opened from its address (a reload, a shared
    link); the page fills it in itself when the timeline is opened by a click."""
    if not user_id.isascii() or not user_id.isdigit() or not 0 < int(user_id) <= MAX_ID:
        return ""
    return user_name_or_none(int(user_id)) or ""


def _entity_label(entity_type: str, entity_id: str) -> str:
    """The entity's name for the heading of a history opened from its address."""
    if not entity_type or not entity_id or len(entity_type) > 64 or len(entity_id) > 64:
        return ""
    return entity_label(entity_type, entity_id) or ""


@founder_required
@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    """Each check in words: its state, value, threshold and since when; both reports' answers.

    Viewing it records the states the report shows (as beat's check run does every minute), so
    "since" is known without a worker too (the quick start).
    """
    report = health_report()
    record_check_states(report)
    reports = [
        {
            "label": label,
            "path": reverse(url_name),
            "status": report.status(scope),
            "http_status": http_status(report.status(scope)),
        }
        for label, url_name, scope in (
            ("The site", "api-health", SITE),
            ("Money operations", "api-health-money", MONEY),
        )
    ]
    changes = [
        {"label": LABELS.get(c.name, c.name), "change": c}
        for c in recent_check_changes(limit=STATUS_CHANGES)
    ]
    context = {
        "reports": reports,
        "rows": status_rows(report, check_states()),
        "changes": changes,
        "checked_at": report.checked_at,
    }
    return render(request, "monitoring/status.html", context)
