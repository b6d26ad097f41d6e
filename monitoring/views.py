from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.permissions import founder_required
from alerts.checks import NO_CHANNEL_HINT, NO_CHANNEL_MESSAGE, channel_kinds
from alerts.selectors import notification_list, open_alert_list


@founder_required
@require_GET
def activity_dashboard(request: HttpRequest) -> HttpResponse:
    """The founders' live feed. The page is a shell; static/js/activity.js fills it from the API."""
    context = {
        "api_url": reverse("api-audit-logs"),
        "poll_ms": int(settings.ACTIVITY_POLL_SECONDS * 1000),
        "open_alerts": list(open_alert_list()),
        "deliveries": list(notification_list(limit=10)),
        "no_alert_channel": "" if channel_kinds() else f"{NO_CHANNEL_MESSAGE} {NO_CHANNEL_HINT}",
    }
    return render(request, "monitoring/activity.html", context)
