"""Sentry in the staff's browsers: the DSN the pages get, its CSP origin, the page's settings.

The SDK is static/vendor/sentry/sentry-browser.min.js (scripts/vendor_sentry.sh builds it from
package-lock.json) and static/js/sentry_init.js starts it with what `page_config` puts in the page
as JSON: the Content-Security-Policy allows no inline script. It loads only on pages for a
logged-in user, when SENTRY_BROWSER_DSN is set and the environment is a real one, as the server's
SDK does (planbeta/sentry.py).

SENTRY_BROWSER_DSN never falls back to SENTRY_DSN: whatever DSN the pages carry is readable by
anyone who can open one, and may be used to post events. It belongs to a Sentry project of its own,
with its own rate limit and allowed domains, and its host must be reachable from the staff's
browsers, which a server DSN pointing at an internal relay is not.

This module is imported by the settings (for the CSP): it must import nothing of the project.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

_PROJECT_ID_RE = re.compile(r"/(\d+)$")
# What may stand in a CSP source: a host name or an IPv6 literal, and a port. Nothing else may
# reach the header (a space or a quote would add a source or a keyword of its own).
_ORIGIN_RE = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d+)?")
_MALFORMED = "SENTRY_BROWSER_DSN must look like https://<public key>@<host>/<project id>."


def browser_ingest_origin(dsn: str) -> str:
    """The origin (scheme://host[:port]) the browser posts events to, for CSP `connect-src`.

    Refuses anything but a public DSN: a legacy DSN with a secret key would hand the secret to
    every page, and a malformed one would silently send nothing.
    """
    parts = urlsplit(dsn)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(_MALFORMED) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.username
        or not parts.hostname
        or parts.query
        or parts.fragment
        or not _PROJECT_ID_RE.search(parts.path)
    ):
        raise ImproperlyConfigured(_MALFORMED)
    if parts.password is not None:
        raise ImproperlyConfigured(
            "SENTRY_BROWSER_DSN must be a public DSN: it carries a secret key, which every page "
            "would show. Use the project's DSN without the ':secret' part."
        )
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    if not _ORIGIN_RE.fullmatch(origin):
        raise ImproperlyConfigured(_MALFORMED)
    return origin


def page_config(request: HttpRequest) -> dict[str, Any] | None:
    """What sentry_init.js needs, or None when this page must not load the SDK at all."""
    from planbeta.sentry import QUIET_ENVIRONMENTS

    dsn = settings.SENTRY_BROWSER_DSN
    environment = settings.SENTRY_ENVIRONMENT
    user = getattr(request, "user", None)
    if not dsn or environment in QUIET_ENVIRONMENTS or user is None or not user.is_authenticated:
        return None
    return {
        "dsn": dsn,
        "environment": environment,
        "release": settings.APP_VERSION,
        # The X-Request-ID of this page's response: an error in the page is found next to the
        # audit rows and server events of the request that rendered it.
        "requestId": getattr(request, "request_id", ""),
        "user": {"id": str(user.pk), "role": user.role},
    }
