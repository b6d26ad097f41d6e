from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.auth import loggable_email
from accounts.forms import LoginForm
from audit.models import Action, Severity
from audit.services import audit_record_independent

LOCKED_OUT_MESSAGE = (
    "Too many failed attempts. Signing in to this account from this address is paused for a "
    "while; ask a founder to lift the lock if you need in sooner."
)


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    form = LoginForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            email = form.cleaned_data["email"].lower()
            user = authenticate(request, username=email, password=form.cleaned_data["password"])
            if user is not None:
                login(request, user)
                audit_record_independent(
                    Action.LOGIN,
                    severity=Severity.INFO,
                    description=f"{user.email} logged in",
                    entity=user,
                    actor=user,
                )
                return HttpResponseRedirect(_safe_next(request, next_url))
            if getattr(request, "axes_locked_out", False):
                # AxesMiddleware swaps this response for lockout_response(), which audits it.
                return HttpResponse(status=429)
            _audit_failed_login(request, email, reason="bad_credentials")
            form.add_error(None, "That e-mail and password do not match an active account.")
        else:
            tried = request.POST.get("email") or request.POST.get("username") or ""
            _audit_failed_login(request, tried.lower(), reason="invalid_form")
        status = 400
    return render(request, "accounts/login.html", {"form": form, "next": next_url}, status=status)


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    user = request.user if request.user.is_authenticated else None
    logout(request)
    if user is not None:
        audit_record_independent(
            Action.LOGOUT,
            severity=Severity.INFO,
            description=f"{user.email} logged out",
            entity=user,
            actor=user,
        )
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """What django-axes answers once an account or address is locked out."""
    email = ""
    if request.method == "POST":
        email = (request.POST.get("email") or request.POST.get("username") or "").lower()
    _audit_failed_login(request, email, reason="locked_out")
    context = {"form": LoginForm(), "next": "", "locked_out_message": LOCKED_OUT_MESSAGE}
    return render(request, "accounts/login.html", context, status=429)


def _audit_failed_login(request: HttpRequest, email: str, *, reason: str) -> None:
    email = loggable_email(email)
    audit_record_independent(
        Action.LOGIN_FAILED,
        severity=Severity.WARNING,
        description=f"Failed login for {email or 'an empty e-mail'}",
        entity_type="User",
        metadata={"emailTried": email, "reason": reason},
    )


def _safe_next(request: HttpRequest, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def admin_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    if request.user.is_authenticated:
        raise PermissionDenied("The admin is for founders.")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))
