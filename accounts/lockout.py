"""Login lockout (django-axes), shaped for an office that shares one public address.

Failures are counted per account *and* address together (axes' `[["username", "ip_address"]]`):
five wrong passwords lock that person at that address only, so a colleague behind the same office
address still signs in, and a stranger elsewhere who knows a founder's e-mail locks only himself.
Password spraying (many accounts tried from one address) meets a second, much larger limit that
counts every failure from the address, whatever the account: LOGIN_ADDRESS_FAILURE_LIMIT within
the cool-off window.
"""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def address_failures(request: HttpRequest) -> int:
    """Failed logins from the request's address within the cool-off window, over all accounts."""
    ip_address = getattr(request, "axes_ip_address", None)
    if not ip_address:
        return 0
    total = AccessAttempt.objects.filter(
        ip_address=ip_address, attempt_time__gte=get_cool_off_threshold(request)
    ).aggregate(n=Sum("failures_since_start"))["n"]
    return total or 0


def _address_is_locked(request: HttpRequest) -> bool:
    return address_failures(request) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


class LockoutHandler(AxesDatabaseHandler):
    """axes' database handler, plus the per-address limit against spraying."""

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        return super().is_locked(request, credentials) or _address_is_locked(request)

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        # axes marks the request locked (which makes its middleware answer with the lockout page)
        # only from its own count; an address over its limit must be marked the same way.
        if request is None or getattr(request, "axes_locked_out", False):
            return
        if _address_is_locked(request):
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=get_client_username(request, credentials),
                ip_address=request.axes_ip_address,
            )
