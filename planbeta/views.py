"""The home page: what each person has to do today. It reads every app, so it lives in the roof."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from accounts.permissions import can_handle_money, is_founder
from accounts.selectors import active_founders
from alerts.selectors import open_alert_list
from core.listing import head
from core.timefmt import school_today
from invoices.selectors import invoices_past_due
from leads.selectors import follow_ups_due
from monitoring.checks import HEALTHY, collect_health
from monitoring.status import LABELS
from payments.selectors import payment_totals, payments_received

# Each section of the work queue shows this many rows and counts all of them.
QUEUE_ROWS = 8


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not can_handle_money(user):
        founders = list(active_founders().values("name", "email"))
        return render(request, "home_teacher.html", {"founders": founders})
    today = school_today()
    follow_ups, follow_up_count = head(
        follow_ups_due(today=today).order_by("follow_up_date", "pk"), QUEUE_ROWS
    )
    past_due, past_due_count = head(invoices_past_due(today=today), QUEUE_ROWS)
    for lead in follow_ups:
        lead.days_overdue = (today - lead.follow_up_date).days
    for invoice in past_due:
        invoice.days_overdue = (today - invoice.due_date).days
    payments, payment_count = head(payments_received(day=today), QUEUE_ROWS)
    context: dict[str, Any] = {
        "today": today,
        "follow_ups": follow_ups,
        "follow_up_count": follow_up_count,
        "past_due": past_due,
        "past_due_count": past_due_count,
        "payments": payments,
        "payment_count": payment_count,
        "payment_totals": payment_totals(day=today) if payment_count else [],
        "is_founder": is_founder(user),
    }
    if context["is_founder"]:
        alerts, alert_count = head(open_alert_list(), QUEUE_ROWS)
        context.update(alerts=alerts, alert_count=alert_count, health=_health_summary())
    return render(request, "home.html", context)


def _health_summary() -> dict[str, Any]:
    """The overall status and the checks that are not healthy, from the health report that
    monitoring.checks caches for a few seconds (the uptime monitor's own numbers)."""
    body, _ = collect_health(detailed=True)
    problems = [
        {
            "name": LABELS.get(name, name),
            "status": check["status"],
            "message": check.get("message", ""),
        }
        for name, check in body["checks"].items()
        if check["status"] != HEALTHY
    ]
    return {
        "status": body["status"],
        "problems": problems,
        "checked_at": parse_datetime(body["timestamp"]),
    }
