from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s().-]")
# [0-9], not \d: \d also matches other scripts' digits, which would let one number be stored in
# two spellings and slip past "WhatsApp unique among students".
_PHONE = re.compile(r"^\+?[1-9][0-9]{7,14}$")


def normalize_phone(value: str) -> str:
    """A WhatsApp or phone number in international shape: optional +, 8-15 digits.

    Spaces, dots, hyphens and brackets people type are dropped. Raises ValueError.
    """
    compact = _SEPARATORS.sub("", value or "")
    if not _PHONE.fullmatch(compact):
        raise ValueError(
            "Enter the number with its country code, 8 to 15 digits, such as +91 98470 12345."
        )
    return compact
