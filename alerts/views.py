"""The page an acknowledge link opens: a founder confirms, and the alert is acknowledged.

GET only shows what the link would do; the acknowledgement is a POST with the CSRF token. Chat
apps and mail scanners fetch links to preview or check them, and such a fetch must not
acknowledge anything (nor can it: it has no founder's session).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.permissions import alert_ack_required
from alerts import acks, selectors, tokens

_TEMPLATE = "alerts/acknowledge.html"


@never_cache
@alert_ack_required
@require_http_methods(["GET", "POST"])
def acknowledge(request: HttpRequest, token: str) -> HttpResponse:
    try:
        ref = tokens.read(token)
    except tokens.ExpiredLink:
        return _page(request, "expired", status=410)
    except tokens.InvalidLink:
        return _page(request, "invalid", status=400)
    state = selectors.alert_state_by_fingerprint(ref.fingerprint)
    if state is None:
        return _page(request, "unknown", status=404)
    if request.method == "POST":
        outcome = acks.alert_acknowledge(
            fingerprint=ref.fingerprint, version=ref.version, actor=request.user
        )
        if outcome.acknowledged:
            return redirect(request.path)  # the page now says who acknowledged it, and until when
        return _page(request, outcome.status, state=outcome.state, status=409)
    return _page(request, acks.link_status(state, ref.version), state=state)


def _page(request: HttpRequest, outcome: str, *, state=None, status: int = 200) -> HttpResponse:
    context = {
        "outcome": outcome,
        "alert": state,
        "paused_until": acks.ack_until(state) if state else None,
        "ack_hours": settings.ALERT_ACK_HOURS,
        "ack_link_hours": settings.ALERT_ACK_LINK_HOURS,
    }
    return render(request, _TEMPLATE, context, status=status)
