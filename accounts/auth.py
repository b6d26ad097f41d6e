from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import authentication, exceptions

from accounts.models import ApiToken, User
from core import rows

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "pb_"  # noqa: S105 - a label, not a secret
# What accounts.services.api_token_issue hands out: the prefix and secrets.token_urlsafe(32).
TOKEN_SHAPE = re.compile(r"pb_[A-Za-z0-9_-]{43}")
_UNKNOWN_KEY = "auth:unknown-token:{}"


def hash_token(raw: str) -> str:
    # Tokens carry 256 bits of randomness: a fast hash is enough, there is nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


def _cache_call(fn: Any, *args: Any) -> Any:
    # The cache saves database round trips; without it (Redis down) every token is looked up.
    try:
        return fn(*args)
    except (RedisError, OSError) as exc:
        logger.warning("token cache unavailable (%s)", type(exc).__name__)
        return None


def known_unknown(key_hash: str) -> bool:
    """True if a token with this hash was looked up lately and no active token had it."""
    return bool(_cache_call(cache.get, _UNKNOWN_KEY.format(key_hash)))


def remember_unknown(key_hash: str) -> None:
    # Keyed by the hash, never the token. Only a missing or revoked token is remembered: a
    # revoked one never comes back, while an inactive user's token works again when the user is
    # reactivated, so that case is looked up every time. The entries expire on their own, and
    # there are only as many as lookups, which the rate limits bound.
    seconds = settings.API_TOKEN_UNKNOWN_CACHE_SECONDS
    if seconds > 0:
        _cache_call(cache.set, _UNKNOWN_KEY.format(key_hash), 1, seconds)


def forget_unknown(key_hash: str) -> None:
    """Drop a remembered miss (a token just issued must work at once, even one guessed before)."""
    _cache_call(cache.delete, _UNKNOWN_KEY.format(key_hash))


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>` against ApiToken. Returning a header makes DRF answer 401.

    `miss_budget_setting` names a setting: at most that many lookups a minute (over every
    worker) may find no token; past it, tokens are refused unread until the minute ends. For an
    endpoint where a refused token still gets an answer (health's summary), so that a flood of
    ever new made-up tokens cannot turn into database round trips either. Off (None) for the
    API, where refusing a real token would stop its script.
    """

    keyword = "Bearer"
    miss_budget_setting: str | None = None

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
        # A token that no one can hold costs no database round trip: one not shaped like ours,
        # or one looked up lately and not found (a flood repeating made-up tokens).
        if not TOKEN_SHAPE.fullmatch(raw):
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        key_hash = hash_token(raw)
        if known_unknown(key_hash) or self._misses_spent():
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        token = _active_token(key_hash)
        if token is None:
            remember_unknown(key_hash)
            self._spend_miss()
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        # Written at most once a minute per token: a busy script should not turn reads into writes.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword

    def _budget(self) -> tuple[str, int] | None:
        limit = getattr(settings, self.miss_budget_setting) if self.miss_budget_setting else 0
        if not limit:
            return None
        # One counter per minute for every worker; it outlives its minute a little, no more.
        return f"auth:token-misses:{self.miss_budget_setting}:{int(time.time() // 60)}", limit

    def _misses_spent(self) -> bool:
        budget = self._budget()
        if budget is None:
            return False
        key, limit = budget
        return int(_cache_call(cache.get, key) or 0) >= limit

    def _spend_miss(self) -> None:
        budget = self._budget()
        if budget is not None:
            key = budget[0]
            _cache_call(cache.add, key, 0, 120)
            # ValueError: expired between add and incr, so that minute is over anyway.
            with contextlib.suppress(ValueError):
                _cache_call(cache.incr, key)


def _active_token(key_hash: str) -> ApiToken | None:
    """The unrevoked token with this hash and its user (one statement, made once per process:
    every API request reads it, and building it through the ORM cost more than running it)."""
    with rows.cursor(connections[DEFAULT_DB_ALIAS]) as cursor:
        cursor.execute(_token_sql(), [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(ApiToken._meta.concrete_fields)
    token = rows.instance(ApiToken, row[:n])
    ApiToken._meta.get_field("user").set_cached_value(token, rows.instance(User, row[n:]))
    return token


@functools.cache
def _token_sql() -> str:
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    # The hash is unique: one row at most.
    return (
        f"SELECT {rows.select_list(ApiToken, 't')}, {rows.select_list(User, 'u')} "  # noqa: S608
        f"FROM {qn(ApiToken._meta.db_table)} t INNER JOIN {qn(User._meta.db_table)} u "
        f"ON t.{qn('user_id')} = u.{qn('id')} "
        f"WHERE t.{qn('key_hash')} = %s AND t.{qn('revoked_at')} IS NULL"
    )


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
