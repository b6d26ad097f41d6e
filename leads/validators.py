"""Phone and WhatsApp numbers: one stored spelling (E.164) for one number.

"One student per WhatsApp number" compares strings, so `+4915166419430`, `4915166419430` and
`+49 1516 6419430` must all be stored the same way. Parsing and validity come from Google's
libphonenumber metadata (the `phonenumbers` package), not from our own digit counting.
"""

from __future__ import annotations

import re

import phonenumbers

# Most students are in India: a number written without a country code is read as Indian.
DEFAULT_REGION = "IN"

# What people type around the digits. ASCII digits only: phonenumbers would read other
# scripts' digits (and letters, as on a keypad: 1-800-FLOWERS) and silently turn them into a
# number nobody wrote.
_ALLOWED = re.compile(r"[0-9+().\-/\s]*")

INVALID_MESSAGE = (
    "Enter a valid phone number: an Indian number such as 98470 12345, or any number with its "
    "country code, such as +49 1516 6419430."
)


def normalize_phone(value: str) -> str:
    """The number in E.164 (`+919847012345`). Raises ValueError with a message for a person.

    Read as an Indian number first (so 98470 12345, 098470 12345 and 91 98470 12345 are all
    +919847012345). When that reading is not a valid number and the text has no leading + or 0,
    it is read once more as country code and number: that is how WhatsApp itself writes numbers
    (wa.me/4915166419430), and a number copied from there must not become a second spelling
    of +4915166419430. An Indian reading that is valid always wins.
    """
    if not isinstance(value, str) or not value.strip() or not _ALLOWED.fullmatch(value):
        raise ValueError(INVALID_MESSAGE)
    text = value.strip()
    number = _parse(text, DEFAULT_REGION)
    if number is None and not text.startswith(("+", "0")):
        number = _parse("+" + text, None)
    if number is None:
        raise ValueError(INVALID_MESSAGE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # An extension cannot be dialled on WhatsApp and E.164 has no place for it.
    if number.extension or not phonenumbers.is_valid_number(number):
        return None
    return number


def canonical_or_same(value: str) -> str:
    """The E.164 form of a stored number, or the value itself when it is not a valid number
    (a spelling left from before numbers were checked this way)."""
    try:
        return normalize_phone(value)
    except ValueError:
        return value


def format_phone(value: str) -> str:
    """A stored number as staff read it: `+91 98470 12345`, `+49 1516 6419430`."""
    if not value:
        return value
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


_SEARCH_SEPARATORS = re.compile(r"[\s().\-/]")


def phone_search_text(q: str) -> str:
    """A search typed as a number, as stored numbers are written: a whole number in E.164
    (`098470 12345` → `+919847012345`), part of one without its separators (`98470-12`
    → `9847012`); empty when the search is not a number."""
    try:
        return normalize_phone(q)
    except ValueError:
        pass
    compact = _SEARCH_SEPARATORS.sub("", q)
    if compact == q or not re.fullmatch(r"\+?[0-9]{3,}", compact):
        return ""
    return compact
