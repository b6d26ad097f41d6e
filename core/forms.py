"""Forms of the staff pages, whatever their app."""

from __future__ import annotations

from typing import Any

from django import forms


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def add_service_error(form: forms.BaseForm, exc: Any) -> None:
    """Show a refused business rule beside the field it concerns, else at the top of the form."""
    placed = False
    for key, messages in (getattr(exc, "details", None) or {}).items():
        field = _snake(key.split(".")[0])
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)
