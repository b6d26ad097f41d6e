"""The one parser of API request bodies (CONTRACT §2): camelCase JSON in UTF-8.

Whatever the body holds, parsing ends in data or in a 4xx: a charset that is not UTF-8 is a 415,
bytes that are not UTF-8, malformed JSON, NaN or Infinity, and JSON nested deeper than
`MAX_DEPTH` are a 400. The depth is checked without recursion before anything else walks the
data (the camelCase conversion recurses), so no depth of input can reach Python's stack limit.
Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE never get here: Django refuses to read them (413).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable
from typing import Any

from django.utils.http import parse_header_parameters
from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

from core.money import JsonDecimal

# Our bodies nest three levels at most (an invoice's items); 32 leaves room for any client.
MAX_DEPTH = 32


class UnsupportedCharset(UnsupportedMediaType):
    default_code = "unsupported_charset"


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def _charset(media_type: str | None) -> str:
    _, params = parse_header_parameters(media_type or "")
    return params.get("charset", "utf-8").strip().lower()


def _is_utf8(charset: str) -> bool:
    # JSON is UTF-8 (RFC 8259). US-ASCII is a subset of it. Anything else, including Python's
    # codecs that are not text encodings at all (rot13, base64, zlib...), is refused by name
    # before any codec runs.
    if charset in ("us-ascii", "ascii"):
        return True
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


def _depth_exceeds(data: Any, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class ApiJSONParser(JSONParser):
    """camelCase JSON in, floats as JsonDecimal (money keeps the digits it was sent with)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        charset = _charset(media_type)
        if not _is_utf8(charset):
            raise UnsupportedCharset(
                media_type,
                detail=f"Send JSON encoded as UTF-8 (charset=utf-8), not {charset[:40]!r}.",
            )
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("The request body is not valid UTF-8.") from exc
        too_deep = f"The request body nests deeper than {MAX_DEPTH} levels."
        try:
            data = json.loads(text, parse_float=JsonDecimal, parse_constant=_refuse_constant)
        except RecursionError as exc:
            # The C decoder's own guard, for nesting in the thousands.
            raise ParseError(too_deep) from exc
        except ValueError as exc:
            raise ParseError() from exc
        if _depth_exceeds(data, MAX_DEPTH):
            raise ParseError(too_deep)
        return underscoreize(data, **camel_settings.JSON_UNDERSCOREIZE)
