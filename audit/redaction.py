"""Strip secrets from anything headed for an audit row, a log line or a Sentry event."""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[REDACTED]"
MAX_DEPTH = 6
MAX_ITEMS = 100
MAX_STRING = 2000

# Compared after folding case and dropping separators, so apiKey, API_KEY, api-key and
# "Api Key" are one key.
_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "apikey",
    "accesskey",
    "privatekey",
    "dsn",
    "cookie",
    "sessionid",
    "csrf",
    "signature",
    "credential",
)
_FOLD = re.compile(r"[^a-z0-9]")
# Credentials inside free text: "postgres://user:pw@host", "password=pw", "Authorization: Bearer x".
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]*:[^/\s@]*@", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<key>\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|dsn|authorization)[\w-]*"
    r"[\"']?\s*[=:]\s*[\"']?)(?P<value>(?:bearer\s+)?[^\s,;&\"'}]+)",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    folded = _FOLD.sub("", str(key).lower())
    return any(word in folded for word in _SECRET_WORDS)


def redact(value: Any, *, _depth: int = 0) -> Any:
    """A JSON-safe copy of `value` with secret-looking keys masked, bounded in depth and size."""
    if _depth >= MAX_DEPTH:
        return "[TRUNCATED]"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more keys"
                break
            key = str(key)
            out[key] = REDACTED if is_secret_key(key) else redact(item, _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        out_list = [redact(item, _depth=_depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out_list.append(f"… {len(items) - MAX_ITEMS} more items")
        return out_list
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value), _depth=_depth)


def redact_text(text: str) -> str:
    """Mask credentials that an exception message or stack trace may carry."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group('key')}{REDACTED}", text)
