"""Keyset pagination for lists: `{"results": [...], "next": url | null}`, newest first.

The cursor is the (created_at, id) of the last row served, so a page costs one index range scan
however deep the caller has walked, and rows inserted meanwhile neither repeat nor vanish.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
import re
from collections.abc import Sequence
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from core.errors import invalid_parameter
from core.timestamps import parse_timestamp

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


SEARCH_MAX_LENGTH = 100
EMPTY_MESSAGE = "Give a value, or leave the parameter out."


def query_param(params: Any, name: str) -> str | None:
    """A query parameter of the API: None when absent; present but empty is a 400."""
    if name not in params:
        return None
    value = params.get(name)
    if value == "":
        raise invalid_parameter(name, EMPTY_MESSAGE)
    return value


def search_param(params: Any, name: str = "q", *, empty_ok: bool = False) -> str:
    """The free-text search parameter, stripped; refused when PostgreSQL could not take it.

    The API refuses `?q=` like any empty parameter; a page's search box sends it empty."""
    raw = params.get(name, "") if empty_ok else query_param(params, name) or ""
    if "\x00" in raw or len(raw) > SEARCH_MAX_LENGTH:
        raise invalid_parameter(name, "Search for up to 100 characters of plain text.")
    return raw.strip()


class KeysetPagination:
    def __init__(self, request: Request | HttpRequest, *, time_field: str = "created_at") -> None:
        self.request = request
        # Serves DRF requests and plain Django ones (the staff pages) alike.
        self.params = getattr(request, "query_params", None) or request.GET
        self.time_field = time_field
        self.limit = self._limit()
        self.cursor = self._cursor()

    def _limit(self) -> int:
        raw = query_param(self.params, "limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
            raise invalid_parameter("limit", f"Use a whole number from 1 to {MAX_LIMIT}.")
        return int(raw)

    def _cursor(self) -> tuple[datetime.datetime, int] | None:
        raw = query_param(self.params, "cursor")
        if raw is None:
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

    def response(
        self, serializer_class: type[serializers.BaseSerializer], items: Sequence[Any]
    ) -> Response:
        """The page's body: `items` (what `paginate` returned) through `serializer_class`."""
        results = serializer_class(items, many=True).data
        return Response({"results": results, "next": self.next_url()})


# --- how a list is described in the OpenAPI schema -------------------------------------------

LIST_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT}",
    ),
    OpenApiParameter(
        "cursor",
        {"type": "string", "minLength": 1},
        description="Opaque; from the previous page's `next`.",
    ),
]
SEARCH_PARAMETER_SCHEMA = {"type": "string", "minLength": 1, "maxLength": SEARCH_MAX_LENGTH}


@functools.cache
def page_serializer(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """`{"results": [item...], "next": url | null}` as a schema component (`<Item>Page`)."""
    name = item.__name__.removesuffix("Serializer").removesuffix("Output")
    return type(
        f"{name}PageSerializer",
        (serializers.Serializer,),
        {
            "__module__": item.__module__,
            "__doc__": "One page of a list, newest first.",
            "results": item(many=True),
            "next": serializers.URLField(
                allow_null=True, help_text="The next page, or null on the last one."
            ),
        },
    )
