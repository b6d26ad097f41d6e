from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.models import Role
from alerts.selectors import notification_list, open_alert_list


@login_required
@require_GET
def activity_dashboard(request: HttpRequest) -> HttpResponse:
    """The founders' live feed. The page is a shell; static/js/activity.js fills it from the API."""
    if request.user.role != Role.FOUNDER:
        raise PermissionDenied("The activity dashboard is for founders.")
    context = {
        "api_url": reverse("api-audit-logs"),
        "poll_ms": int(float(getattr(settings, "ACTIVITY_POLL_SECONDS", 10)) * 1000),
        "open_alerts": list(open_alert_list()),
        "deliveries": list(notification_list(limit=10)),
    }
    return render(request, "monitoring/activity.html", context)
