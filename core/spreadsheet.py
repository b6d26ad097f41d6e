"""CSV cells that a spreadsheet shows as text, never runs (OWASP "CSV Injection")."""

from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula: such a cell gets a
# leading apostrophe, which makes it text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
