"""Text as the API and the staff pages take it: the camelCase spelling of a field, and the
characters that free text may not carry."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError


def camel(name: str) -> str:
    """`payable_now` → `payableNow`: how a field is named in the API and in audit metadata."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# Characters that change how the text around them is shown without being visible themselves:
# the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the
# direction marks (U+200E, U+200F, U+061C) and the control characters other than tab and line
# breaks (C0 and C1, DEL; NUL has its own validator in DRF and Django). In a name or a note they
# can make one name read as another on an invoice or in the audit trail, or reorder the columns
# of a log line. Zero-width joiners (U+200C, U+200D) are not among them: Malayalam and other
# Indian scripts need them.
_INVISIBLE_CONTROLS = re.compile(
    r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
INVISIBLE_CONTROLS_MESSAGE = (
    "Remove the invisible control characters (such as text-direction marks) from this text."
)


def has_invisible_controls(value: str) -> bool:
    return _INVISIBLE_CONTROLS.search(value) is not None


def refuse_invisible_controls(value: str) -> None:
    """A validator for every free-text field, in the API's serializers and in the pages' forms."""
    if isinstance(value, str) and has_invisible_controls(value):
        raise ValidationError(INVISIBLE_CONTROLS_MESSAGE, code="invisible_controls")
