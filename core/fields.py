"""Serializer fields every API input is built from, strict about types.

DRF's own fields are lenient: a CharField turns the JSON number 123 into "123", an IntegerField
reads full-width digits as 12 and takes any number of digits until the database overflows, a
DateField takes "20260131" and week dates. Input serializers use these instead;
`tests/api/test_strict_inputs.py` checks that no plain CharField is left in any of them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.text import refuse_invisible_controls
from core.timestamps import MAX_LENGTH as TIMESTAMP_MAX_LENGTH
from core.timestamps import parse_timestamp

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# PostgreSQL's bigint, the type of every id.
MAX_ID = 2**63 - 1


class StrictTextMixin:
    """Only a JSON string is text; free text carries no invisible control characters."""

    default_error_messages: ClassVar[dict[str, StrOrPromise]] = {
        "not_text": "Send text (a JSON string) here."
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validators.append(refuse_invisible_controls)  # type: ignore[attr-defined]

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("not_text")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(StrictTextMixin, serializers.CharField):
    pass


class StrictEmailField(StrictTextMixin, serializers.EmailField):
    pass


class StrictRegexField(StrictTextMixin, serializers.RegexField):
    pass


_ASCII_INTEGER = re.compile(r"-?[0-9]{1,19}")


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, or in a query string ASCII digits; within bigint unless told otherwise."""

    default_error_messages = {"invalid": "Use a whole number written in the digits 0-9."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str):
            if not _ASCII_INTEGER.fullmatch(data):
                self.fail("invalid")
            data = int(data)
        elif not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StrictDateField(serializers.DateField):
    """YYYY-MM-DD and nothing else (CONTRACT §2)."""

    default_error_messages = {"invalid": "Use a date such as 2026-01-31 (YYYY-MM-DD)."}

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            self.fail("invalid")
        return super().to_internal_value(value)


@extend_schema_field({"type": "string", "format": "date-time", "maxLength": TIMESTAMP_MAX_LENGTH})
class TimestampField(serializers.Field):
    """An ISO 8601 moment with an offset PostgreSQL accepts (see core.timestamps)."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return parse_timestamp(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: Any) -> str:
        return value.isoformat()
