"""Text as the API and the staff pages take it."""

from __future__ import annotations


def camel(name: str) -> str:
    """`payable_now` → `payableNow`: how a field is named in the API and in audit metadata."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
