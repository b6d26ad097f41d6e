"""Who is acting, from where, in which request: captured once, read by the audit service.

The middleware opens a context per request; Celery tasks and management commands open their
own with `audit_context(...)`. The user is read lazily from the request at write time, because
DRF authenticates (token, session) inside the view, long after the middleware ran.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError
from django.http import HttpRequest

from audit.models import Source
from core.database import database_unavailable

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass
class AuditContext:
    source: str = Source.SYSTEM
    request_id: str = ""
    ip_address: str | None = None
    user_agent: str = ""
    path: str = ""
    method: str = ""
    request: HttpRequest | None = field(default=None, repr=False)
    label: str = ""

    @property
    def user(self) -> AbstractBaseUser | None:
        """The request's signed-in user, read now (DRF authenticates inside the view); else None."""
        if self.request is None:
            return None
        try:
            user = getattr(self.request, "user", None)
            if user is None or not getattr(user, "is_authenticated", False):
                return None
        except DatabaseError as exc:
            # The lazy session user needs the database; when that is what failed, the row that
            # reports it is written without the user rather than not at all.
            if database_unavailable(exc):
                return None
            raise
        # Authenticated, so not the AnonymousUser: a user model instance (or its lazy stand-in).
        return cast(AbstractBaseUser, user)


_current: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


def current_context() -> AuditContext:
    return _current.get() or AuditContext()


@contextmanager
def audit_context(*, source: str, label: str = "", request_id: str = "") -> Iterator[AuditContext]:
    """Mark the rows written inside as coming from a task or command rather than a request."""
    token = open_context(source=source, label=label, request_id=request_id)
    try:
        yield current_context()
    finally:
        _current.reset(token)


def open_context(*, source: str, label: str = "", request_id: str = "") -> Any:
    """Start a context; return the token for `unbind` (for hooks that cannot use `with`)."""
    ctx = AuditContext(source=source, label=label, request_id=request_id or new_request_id())
    return _current.set(ctx)


def bind_request(request: HttpRequest) -> Any:
    ctx = AuditContext(
        source=Source.REQUEST,
        request_id=request_id_for(request),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        path=request.path[:512],
        method=request.method or "",
        request=request,
    )
    # Our own attribute on the request, for the response header and the pages; not in the stubs.
    request.request_id = ctx.request_id  # type: ignore[attr-defined]
    return _current.set(ctx)


def unbind(token: Any) -> None:
    _current.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if REQUEST_ID_RE.fullmatch(incoming) else new_request_id()


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address TRUSTED_PROXY_COUNT hops from the right of X-Forwarded-For.

    Each trusted proxy appends the address it received the request from, so the entry written by
    the outermost trusted proxy is the real client; everything left of it may be forged.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= hops:
            remote = forwarded[-hops]
    return _valid_ip(remote)


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def axes_client_ip(request: HttpRequest) -> str | None:
    """django-axes must count failures against the same address the audit trail records."""
    return client_ip(request)
