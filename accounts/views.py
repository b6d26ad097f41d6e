from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.actors import AuthenticatedHttpRequest
from accounts.auth import loggable_email
from accounts.forms import (
    CHOOSE,
    LoginForm,
    PasswordResetForm,
    TokenIssueForm,
    UserCreateForm,
    UserEditForm,
    UserFilterForm,
)
from accounts.models import Role, User
from accounts.permissions import users_page_required
from audit.models import Action, Severity
from audit.services import AuditEntry, audit_record_independent
from core.errors import ApplicationError
from core.forms import add_service_error
from core.listing import Sort, in_choice_order, list_page
from core.timefmt import school_today

logger = logging.getLogger(__name__)

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
                _audit_session(Action.LOGIN, user, "logged in")
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
        _audit_session(Action.LOGOUT, user, "logged out")
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


def _audit_session(action: str, user: User, what: str) -> None:
    # A row of its own (it outlives the request's transaction); `user` may be request.user,
    # the lazy stand-in, which the audit names by its model.
    audit_record_independent(
        AuditEntry(
            action,
            severity=Severity.INFO,
            description=f"{user.email} {what}",
            entity=user,
            actor=user,
        )
    )


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
        AuditEntry(
            Action.LOGIN_FAILED,
            severity=Severity.WARNING,
            description=f"Failed login for {email or 'an empty e-mail'}",
            entity_type="User",
            metadata={"emailTried": email, "reason": reason},
        ),
    )


def _safe_next(request: HttpRequest, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def admin_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    if request.user.is_authenticated:
        raise PermissionDenied("The admin is for founders.")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


# --- the user's own password ------------------------------------------------------------------


@login_required
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@never_cache
@require_http_methods(["GET", "POST"])
def password_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every role may change its own password (after a founder handed over a generated one)."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_set_password(
            user=request.user, actor=request.user, password=form.cleaned_data["new_password1"]
        )
        # The new hash would end this session too; the user who changed it stays logged in.
        update_session_auth_hash(request, user)
        messages.success(request, "Your password has been changed.")
        return redirect("home")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/password_change.html", {"form": form}, status=status)


# --- founders managing users ------------------------------------------------------------------

USER_SORTS = {
    "name": Sort("Name", ("name",)),
    "email": Sort("E-mail", ("email",)),
    "role": Sort(
        "Role", (in_choice_order("role", Role.values),), "founders first", "teachers first"
    ),
    "last_login": Sort("Last login", ("last_login",), "longest ago first", "most recent first"),
    "created": Sort("Created", ("date_joined",), "oldest first", "newest first"),
}

# One-time keys of the forms that show a secret (a new user's password, a reset password, a
# token): a form sent twice (a double click, the browser resending it on reload) acts once.
_ONCE_SESSION_KEY = "accounts_once_keys"
_ONCE_KEEP = 20


def _once_key(request: HttpRequest) -> str:
    key = secrets.token_urlsafe(18)
    keys = request.session.get(_ONCE_SESSION_KEY, [])[-(_ONCE_KEEP - 1) :]
    request.session[_ONCE_SESSION_KEY] = [*keys, key]
    return key


def _claim_once(request: HttpRequest) -> bool:
    """Spend the form's one-time key; False when it was spent already (or never issued)."""
    key = request.POST.get("once", "")
    keys = request.session.get(_ONCE_SESSION_KEY, [])
    if not key or key not in keys:
        return False
    # The session is saved when the response goes out, so two requests sent at once both find
    # the key in it; the cache's atomic add lets only one of them through.
    try:
        claimed = cache.add(f"accounts:once:{key}", 1, timeout=24 * 3600)
    except Exception as exc:
        logger.warning("one-time form key not claimed in the cache (%s)", type(exc).__name__)
        claimed = True  # the session check alone, while the cache is down
    if not claimed:
        return False
    request.session[_ONCE_SESSION_KEY] = [k for k in keys if k != key]
    return True


SENT_TWICE = "This form was already sent; it was not done a second time."


@users_page_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    def rows(data: dict[str, Any]) -> Any:
        return selectors.user_list(
            q=data["q"],
            role=data["role"],
            active={"true": True, "false": False}.get(data["active"]),
        )

    context, status = list_page(
        request.GET,
        filters=UserFilterForm(request.GET),
        sorts=USER_SORTS,
        default_sort="name",
        rows=rows,
    )
    return render(request, "accounts/user_list.html", context, status=status)


def _show_secret(request: HttpRequest, *, user: User, kind: str, secret: str) -> HttpResponse:
    """The one page that ever shows a password or token: straight in the answer to the form,
    never stored, never put in a message or the session, and not cached by the browser."""
    response = render(
        request, "accounts/secret_once.html", {"shown_user": user, "kind": kind, "secret": secret}
    )
    add_never_cache_headers(response)
    return response


def _new_password(form: Any) -> str:
    if form.cleaned_data["password_choice"] == CHOOSE:
        return form.cleaned_data["password1"]
    return services.generate_password()


@users_page_required
@sensitive_post_parameters("password1", "password2")
@never_cache
@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if not _claim_once(request):
            messages.error(request, SENT_TWICE)
            return redirect("accounts:users")
        if form.is_valid():
            data = form.cleaned_data
            password = _new_password(form)
            try:
                user = services.user_create(
                    email=data["email"],
                    name=data["name"],
                    role=data["role"],
                    password=password,
                    actor=request.user,
                )
            except IntegrityError:
                # Created by another founder between the form's check and this insert.
                form.add_error("email", "A user with this e-mail address already exists.")
            else:
                if data["password_choice"] == CHOOSE:
                    messages.success(request, f"{user.name} can now log in as {user.email}.")
                    return redirect("accounts:user", user_id=user.pk)
                return _show_secret(request, user=user, kind="new_user", secret=password)
    context = {"form": form, "once": _once_key(request)}
    return render(request, "accounts/user_create.html", context, status=status)


# The user page holds three forms; each gets ids of its own (the field names stay as they are).
EDIT_IDS, RESET_IDS, TOKEN_IDS = "edit_%s", "reset_%s", "token_%s"


def _user_page(
    request: HttpRequest, user: User, *, status: int = 200, **forms: Any
) -> HttpResponse:
    context = {
        "shown_user": user,
        "tokens": list(selectors.user_token_list(user)),
        "edit_form": forms.get("edit_form")
        or UserEditForm(initial={"name": user.name, "role": user.role}, auto_id=EDIT_IDS),
        "password_form": forms.get("password_form")
        or PasswordResetForm(user=user, auto_id=RESET_IDS),
        "token_form": forms.get("token_form") or TokenIssueForm(auto_id=TOKEN_IDS),
        "once_reset": _once_key(request),
        "once_token": _once_key(request),
        "is_self": user.pk == request.user.pk,
        # "What did they do today": the activity dashboard from the school's midnight on.
        "today": school_today().isoformat(),
    }
    return render(request, "accounts/user_detail.html", context, status=status)


@users_page_required
@never_cache
@require_GET
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_page(request, selectors.user_get(user_id))


@users_page_required
@require_POST
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    user = selectors.user_get(user_id)
    form = UserEditForm(request.POST, auto_id=EDIT_IDS)
    if not form.is_valid():
        return _user_page(request, user, status=400, edit_form=form)
    try:
        services.user_update(user=user, actor=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        add_service_error(form, exc)
        return _user_page(request, user, status=exc.status_code, edit_form=form)
    messages.success(request, "Saved.")
    return redirect("accounts:user", user_id=user.pk)


@users_page_required
@require_POST
def user_set_active(request: HttpRequest, user_id: int, active: bool) -> HttpResponse:
    user = selectors.user_get(user_id)
    try:
        user = services.user_set_active(user=user, actor=request.user, active=active)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if active:
            messages.success(request, f"{user.name} can log in again.")
        else:
            messages.success(
                request,
                f"{user.name} is deactivated: they cannot log in, and their sessions and API "
                "tokens no longer work.",
            )
    return redirect("accounts:user", user_id=user.pk)


@users_page_required
@sensitive_post_parameters("password1", "password2")
@never_cache
@require_POST
def user_password_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    user = selectors.user_get(user_id)
    if not _claim_once(request):
        messages.error(request, SENT_TWICE)
        return redirect("accounts:user", user_id=user.pk)
    form = PasswordResetForm(request.POST, user=user, auto_id=RESET_IDS)
    if not form.is_valid():
        return _user_page(request, user, status=400, password_form=form)
    password = _new_password(form)
    user = services.user_set_password(user=user, actor=request.user, password=password)
    if user.pk == request.user.pk:
        update_session_auth_hash(request, user)
    if form.cleaned_data["password_choice"] == CHOOSE:
        messages.success(request, f"New password set for {user.name}; their sessions have ended.")
        return redirect("accounts:user", user_id=user.pk)
    return _show_secret(request, user=user, kind="password", secret=password)


@users_page_required
@never_cache
@require_POST
def user_token_issue(request: HttpRequest, user_id: int) -> HttpResponse:
    user = selectors.user_get(user_id)
    if not _claim_once(request):
        messages.error(request, SENT_TWICE)
        return redirect("accounts:user", user_id=user.pk)
    form = TokenIssueForm(request.POST, auto_id=TOKEN_IDS)
    if not form.is_valid():
        return _user_page(request, user, status=400, token_form=form)
    if not user.is_active:
        messages.error(
            request, "A deactivated user's tokens would not work; reactivate them first."
        )
        return redirect("accounts:user", user_id=user.pk)
    raw = services.api_token_issue(user=user, name=form.cleaned_data["name"], actor=request.user)
    return _show_secret(request, user=user, kind="token", secret=raw)


@users_page_required
@require_POST
def user_token_revoke(request: HttpRequest, user_id: int, token_id: int) -> HttpResponse:
    user = selectors.user_get(user_id)
    token = selectors.user_token_get(user, token_id)
    was_active = token.is_active
    services.api_token_revoke(token=token, actor=request.user)
    if was_active:
        messages.success(
            request, f"Token {token.prefix}… revoked: requests bearing it now get 401."
        )
    else:
        messages.info(request, f"Token {token.prefix}… was already revoked.")
    return redirect("accounts:user", user_id=user.pk)
