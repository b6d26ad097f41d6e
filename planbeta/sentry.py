"""Sentry for the web process, the Celery worker and beat: one set of options, scrubbed events.

No event leaves a development or test environment: `init_sentry` does nothing there, whatever
SENTRY_DSN says. Request bodies, cookies, credentials, query strings and local variables never
leave at all: the SDK's `data_collection` options switch their collection off, and `scrub_event`
(before_send and before_send_transaction) strips them again from whatever an integration attaches,
redacts extra data as the audit trail does, and reduces the user to id and role. Database errors
arrive with their class, SQLSTATE and constraint name but never the DETAIL, CONTEXT or HINT text
that quotes the refused row (core.error_text), wherever in the event that text would appear: the
exception and its chain, breadcrumbs of log lines, extra data. `sys.argv` is not sent.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sentry_sdk
from django.conf import settings
from sentry_sdk.integrations.argv import ArgvIntegration
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.redis import RedisIntegration

from audit.redaction import is_secret_key, redact
from core.error_text import database_error_facts, exception_chain, safe_message, without_diagnostics

QUIET_ENVIRONMENTS = frozenset({"development", "test"})
# Health and readiness are polled every few seconds by monitors and load balancers: tracing them
# would spend the whole quota on requests that tell us nothing.
UNTRACED_PATH_PREFIX = "/api/system/"
_DROPPED_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-api-key", "proxy-authorization"}
)

_HEADER_DENY_TERMS = ["authorization", "cookie", "api-key", "forwarded", "-ip", "remote-", "-user"]


def sentry_options(
    *,
    dsn: str,
    environment: str,
    release: str,
    traces_sample_rate: float,
) -> dict[str, Any]:
    """The keyword arguments for `sentry_sdk.init`, shared by every process and by the tests."""
    return {
        "dsn": dsn,
        "environment": environment,
        "release": release or None,
        # `data_collection` supersedes `send_default_pii` (deprecated in sentry-sdk 2.75); this
        # is send_default_pii=False and tighter: no cookies, bodies, query strings or locals.
        "data_collection": {
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "denylist", "terms": _HEADER_DENY_TERMS}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
            "database_query_data": False,
            "queues": False,
            "stack_frame_variables": False,
        },
        "max_request_body_size": "never",
        "include_local_variables": False,
        "traces_sampler": _make_traces_sampler(traces_sample_rate),
        "before_send": before_send,
        "before_send_transaction": before_send_transaction,
        "integrations": [
            DjangoIntegration(),
            CeleryIntegration(monitor_beat_tasks=False),
            RedisIntegration(),
            # Log records become breadcrumbs only; errors reach Sentry through the audit service
            # and the framework integrations, once each.
            LoggingIntegration(level=logging.INFO, event_level=None),
        ],
        # A default integration that copies the command line into every event: a management
        # command's arguments can be e-mail addresses or a password.
        "disabled_integrations": [ArgvIntegration()],
    }


def init_sentry(process: str) -> bool:
    """Initialise the SDK for this process if a DSN and a real environment are set."""
    environment = settings.SENTRY_ENVIRONMENT
    if not settings.SENTRY_DSN or environment in QUIET_ENVIRONMENTS:
        return False
    sentry_sdk.init(
        **sentry_options(
            dsn=settings.SENTRY_DSN,
            environment=environment,
            release=settings.APP_VERSION,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        )
    )
    sentry_sdk.set_tag("process", process)
    return True


def _make_traces_sampler(rate: float):
    def traces_sampler(sampling_context: dict[str, Any]) -> float:
        environ = sampling_context.get("wsgi_environ") or {}
        path = environ.get("PATH_INFO", "")
        if not path:
            scope = sampling_context.get("asgi_scope") or {}
            path = scope.get("path", "")
        if path.startswith(UNTRACED_PATH_PREFIX):
            return 0.0
        parent = sampling_context.get("parent_sampled")
        if parent is not None:
            return float(parent)
        return rate

    return traces_sampler


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Scrub an error event; its exception (hint) gives the safe messages and the SQLSTATE."""
    exc_info = hint.get("exc_info") if hint else None
    if exc_info and exc_info[1] is not None:
        _describe_exception(event, exc_info[1])
    return scrub_event(event)


def before_send_transaction(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Scrub a transaction: EventScrubber does not run on transactions; this does."""
    return scrub_event(event)


def _describe_exception(event: dict[str, Any], exc: BaseException) -> None:
    # The SDK lists the chain innermost first; when the event's list is that chain, each value is
    # replaced by its safe message (a database error's with SQLSTATE and constraint).
    chain = list(reversed(list(exception_chain(exc))))
    values = (event.get("exception") or {}).get("values") or []
    if len(values) == len(chain) and all(
        value.get("type") == type(error).__name__
        for value, error in zip(values, chain, strict=True)
    ):
        for value, error in zip(values, chain, strict=True):
            value["value"] = safe_message(error)
    facts = database_error_facts(exc)
    if facts:
        tags = event.setdefault("tags", {})
        if isinstance(tags, dict):
            tags.update({f"db.{key}": value for key, value in facts.items()})


def scrub_event(event: dict[str, Any]) -> dict[str, Any]:
    """Strip credentials, cookies, bodies, query strings; tag the request id; user = id + role."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        request.pop("query_string", None)
        if request.get("url"):
            request["url"] = _without_query(request["url"])
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                name: value
                for name, value in headers.items()
                if name.lower() not in _DROPPED_HEADERS and not is_secret_key(name)
            }
        env = request.get("env")
        if isinstance(env, dict):
            env.pop("REMOTE_ADDR", None)
    if isinstance(event.get("extra"), dict):
        event["extra"].pop("sys.argv", None)
        event["extra"] = redact(event["extra"])
    crumbs = event.get("breadcrumbs") or {}
    for crumb in crumbs.get("values", []) if isinstance(crumbs, dict) else crumbs:
        data = crumb.get("data")
        if isinstance(data, dict):
            if isinstance(data.get("url"), str):
                data["url"] = _without_query(data["url"])
            data.pop("http.query", None)
            crumb["data"] = redact(data)
    for span in event.get("spans") or []:
        data = span.get("data")
        if isinstance(data, dict):
            data.pop("http.query", None)
            span["data"] = redact(data)

    # Imported here so that importing this module never needs the app registry (models).
    from audit.context import current_context

    # Last, over every string of the event: whatever quoted a database error's text (a log line's
    # breadcrumb, an exception raised with the error in its message, extra data) loses its
    # DETAIL, CONTEXT and HINT lines.
    _strip_diagnostics(event)

    ctx = current_context()
    try:
        user = ctx.user
    except Exception:
        # Resolving a lazy session user needs the database, which may be what just failed; an
        # exception here would make the SDK drop the whole event.
        user = None
    event["user"] = {"id": str(user.pk), "role": getattr(user, "role", "")} if user else {}
    if ctx.request_id:
        event.setdefault("tags", {})
        if isinstance(event["tags"], dict):
            event["tags"].setdefault("request_id", ctx.request_id)
    return event


def _strip_diagnostics(value: Any) -> Any:
    if isinstance(value, str):
        return without_diagnostics(value)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _strip_diagnostics(item)
    elif isinstance(value, list):
        value[:] = [_strip_diagnostics(item) for item in value]
    return value


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
