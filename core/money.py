"""Money in and out of the API (CONTRACT §2): Decimal all the way, never float.

JSON numbers are parsed by `core.parsers.ApiJSONParser` into `JsonDecimal`, which keeps the
literal text as it was sent, so that `1e3` or `10.001` can be refused as written instead of after
a float has already rounded them. Strings go through the same checks.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency
from django import forms
from django.db import models
from rest_framework import serializers

MAX_AMOUNT = Decimal("1000000")
CENT = Decimal("0.01")


class Currency(models.TextChoices):
    """The currencies the school takes money in (CONTRACT §2): for models, forms and the API."""

    EUR = "EUR", "EUR"
    INR = "INR", "INR"


def amount_field(**kwargs: Any) -> models.DecimalField:
    """The model field for an amount of money: up to 9,999,999,999.99, two decimals."""
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


# ASCII digits only: Decimal() would also read other scripts' digits.
_PLAIN_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


# Thousands separators as people type them in a form: "2,000", "1,000,000" (groups of three) or
# the Indian "1,00,000" (groups of two before the last three). Any other comma ("2,00", "1,,000",
# "12,3456") is refused rather than guessed at.
_GROUPED = re.compile(
    r"^-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,2}(?:,[0-9]{2})+,[0-9]{3})(\.[0-9]+)?$"
)

# Each currency is shown with its own grouping and symbol: lakhs and crores for the rupee
# (₹1,00,000.00), thousands for the euro (€100,000.00). English in both, as the pages are.
CURRENCY_LOCALES = {"INR": "en_IN", "EUR": "en_IE"}


class JsonDecimal(Decimal):
    """A JSON number parsed as Decimal that remembers the text it came from."""

    raw: str

    def __new__(cls, text: str) -> JsonDecimal:
        obj = super().__new__(cls, text)
        obj.raw = text
        return obj


def parse_money(value: Any, *, allow_zero: bool = False, grouped: bool = False) -> Decimal:
    """The one parser for an amount of money, whatever its source (JSON, form). Raises ValueError
    with a sentence a person understands.

    `grouped` (the staff forms) also takes thousands separators where they belong ("2,000",
    "1,00,000"); the API never does: a JSON client has no reason to send them."""
    if isinstance(value, bool) or value is None:
        raise ValueError("Enter an amount such as 134.00.")
    if isinstance(value, JsonDecimal):
        text = value.raw
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        # ASCII spaces only: str.strip() would also take a no-break or thin space, which a
        # paste from a bank statement brings and which is not part of a plain amount.
        text = value.strip(" ")
        if grouped and "," in text:
            if not _GROUPED.fullmatch(text):
                raise ValueError(
                    "Put commas only between groups of digits, such as 2,000 or 1,00,000."
                )
            text = text.replace(",", "")
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        # A float has already lost the text it was written as; refuse rather than guess.
        raise ValueError('Enter the amount as a decimal number or a string such as "134.00".')
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError("Enter a plain amount with up to 2 decimals, such as 134.00.")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above guarantees a number
        raise ValueError("Enter a plain amount with up to 2 decimals, such as 134.00.") from exc
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("Use at most 2 decimal places.")
    # "-0" typed as text is a minus sign where none belongs; -0.0 from a JSON number is zero.
    signed_zero = amount == 0 and text.startswith("-")
    if signed_zero and not isinstance(value, str):
        amount, signed_zero = Decimal(0), False
    if amount < 0 or signed_zero or (amount == 0 and not allow_zero):
        raise ValueError(
            "The amount must be greater than zero."
            if not allow_zero
            else "The amount cannot be negative."
        )
    if amount > MAX_AMOUNT:
        raise ValueError("The amount cannot be more than 1,000,000.")
    return amount.quantize(CENT)


def money_str(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def format_money(value: Decimal | None, currency: str) -> str:
    """An amount as people read it in its currency: ₹1,00,000.00, €1,000.00 (Babel's CLDR data).

    The one money format of the pages, the PDF and the e-mail."""
    if value is None:
        return "—"
    amount = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return format_currency(amount, currency, locale=CURRENCY_LOCALES.get(currency, "en_IN"))


def money_locale(currency: str) -> str:
    """The BCP 47 spelling of the currency's locale, for the browser's Intl.NumberFormat."""
    return CURRENCY_LOCALES.get(currency, "en_IN").replace("_", "-")


class MoneyField(serializers.Field):
    """A strictly parsed positive amount (or >= 0 with allow_zero) that renders as "134.00".

    Its OpenAPI description is in planbeta/openapi.py (it differs for requests and responses)."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        try:
            return parse_money(data, allow_zero=self.allow_zero)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: Decimal) -> str | None:
        return money_str(value)


class CurrencyField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"invalid_choice": "Use EUR or INR."})
        super().__init__(choices=Currency.values, **kwargs)


class MoneyFormField(forms.CharField):
    """The same strict rules for the staff pages' forms, plus thousands separators where they
    belong, as people write amounts ("2,000", "1,00,000")."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal"}))
        # parse_money strips what may be stripped; CharField's strip would also eat NBSP.
        kwargs["strip"] = False
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_money(value, allow_zero=self.allow_zero, grouped=True)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
