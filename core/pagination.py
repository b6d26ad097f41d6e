"""Keyset pagination for lists: `{"results": [...], "next": url | null}`, newest first.

The cursor is the (created_at, id) of the last row served, so a page costs one index range scan
however deep the caller has walked, and rows inserted meanwhile neither repeat nor vanish.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Sequence
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from core.errors import invalid_parameter
from core.timestamps import parse_timestamp

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def search_param(params: Any, name: str = "q") -> str:
    """The free-text search parameter, stripped; refused when PostgreSQL could not take it."""
    value = params.get(name, "").strip()
    if "\x00" in value or len(value) > 100:
        raise invalid_parameter(name, "Search for up to 100 characters of plain text.")
    return value


class KeysetPagination:
    def __init__(self, request: Request | HttpRequest, *, time_field: str = "created_at") -> None:
        self.request = request
        # Serves DRF requests and plain Django ones (the staff pages) alike.
        self.params = getattr(request, "query_params", None) or request.GET
        self.time_field = time_field
        self.limit = self._limit()
        self.cursor = self._cursor()

    def _limit(self) -> int:
        raw = self.params.get("limit")
        if raw is None or raw == "":
            return DEFAULT_LIMIT
        if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
            raise invalid_parameter("limit", f"Use a whole number from 1 to {MAX_LIMIT}.")
        return int(raw)

    def _cursor(self) -> tuple[datetime.datetime, int] | None:
        raw = self.params.get("cursor")
        if not raw:
            return None
        try:
            stamp, pk = json.loads(base64.urlsafe_b64decode(raw.encode()))
            moment = parse_timestamp(stamp)
            if isinstance(pk, bool) or not isinstance(pk, int) or not 0 < pk < 2**63:
                raise ValueError
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
            raise invalid_parameter(
                "cursor", "This cursor is not valid; start again from the first page."
            ) from exc
        return moment, pk

    def paginate(self, queryset: QuerySet) -> Sequence[Any]:
        field = self.time_field
        queryset = queryset.order_by(f"-{field}", "-id")
        if self.cursor is not None:
            moment, pk = self.cursor
            queryset = queryset.filter(
                Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "id__lt": pk})
            )
        rows = list(queryset[: self.limit + 1])
        self.has_more = len(rows) > self.limit
        self.page = rows[: self.limit]
        return self.page

    def next_url(self) -> str | None:
        if not self.has_more or not self.page:
            return None
        last = self.page[-1]
        token = json.dumps([getattr(last, self.time_field).isoformat(), last.pk])
        cursor = base64.urlsafe_b64encode(token.encode()).decode()
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def response(self, results: list[Any]) -> Response:
        return Response({"results": results, "next": self.next_url()})
