from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiToken

TOKEN_PREFIX = "pb_"  # noqa: S105 - a label, not a secret


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness: a fast hash is enough, there is nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` against ApiToken. Returning a header makes DRF answer 401."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid Authorization header.") from exc
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        # Written at most once a minute per token: a busy script should not turn reads into writes.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """The account a login attempt is for, however the form spelled the field."""
    value = ""
    if credentials:
        value = credentials.get("username") or credentials.get("email") or ""
    if not value and request is not None and request.method == "POST":
        value = request.POST.get("username") or request.POST.get("email") or ""
    return value.strip().lower()


def loggable_email(value: str) -> str:
    """`value` if it is an e-mail address, else a marker: what people type into the e-mail box of
    a login form is sometimes their password, and the audit log keeps everything for good."""
    try:
        validate_email(value)
    except ValidationError:
        return "[not an e-mail address]" if value else ""
    return value[:254]
