"""Forms of the staff pages, whatever their app: the base every staff form derives from
(date fields the browser can show) and the helper that shows a refused business rule."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from django import forms
from django.forms.fields import BaseTemporalField

from core.text import refuse_invisible_controls

ISO_DATE = "%Y-%m-%d"
# Seconds included so that a stored time comes back as it was; microseconds cannot travel
# through <input type=datetime-local>, so a datetime edited in a form is kept to the second.
ISO_LOCAL_DATETIME = "%Y-%m-%dT%H:%M:%S"


class DateInput(forms.DateInput):
    """<input type=date>. Its value must be YYYY-MM-DD whatever the page's language: the
    browser shows that in the user's own format, and a value in any other shape (such as
    en-GB's 24/12/2026, Django's default here) is dropped, so saving the form would erase it."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format=ISO_DATE)


class DateTimeInput(forms.DateTimeInput):
    """<input type=datetime-local>, valued YYYY-MM-DDTHH:MM:SS in the current time zone."""

    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"step": "1", **(attrs or {})}, format=ISO_LOCAL_DATETIME)


# DateTimeField first: it is not a DateField subclass today, but order the checks as if it were.
_TEMPORAL_WIDGETS: list[tuple[type[BaseTemporalField], type[forms.Widget], str]] = [
    (forms.DateTimeField, DateTimeInput, ISO_LOCAL_DATETIME),
    (forms.DateField, DateInput, ISO_DATE),
]


class StaffFormMetaclass(forms.forms.DeclarativeFieldsMetaclass):
    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> type:
        cls = cast("type[forms.Form]", super().__new__(mcs, name, bases, attrs))
        for field in cls.base_fields.values():
            _use_browser_widget(field)
            _refuse_invisible_controls(field)
        return cls


def _refuse_invisible_controls(field: forms.Field) -> None:
    # Every text field of a staff form refuses what the API refuses (core.text); a field that
    # a subclass inherits is the same object, so it is given the validator once.
    if isinstance(field, forms.CharField) and refuse_invisible_controls not in field.validators:
        field.validators.append(refuse_invisible_controls)


def _use_browser_widget(field: forms.Field) -> None:
    for field_class, widget_class, iso_format in _TEMPORAL_WIDGETS:
        if not isinstance(field, field_class):
            continue
        # Only Django's stock text widget is replaced: a field given a widget on purpose
        # (hidden, split, select) keeps it.
        if type(field.widget) in (forms.DateInput, forms.DateTimeInput):
            widget = widget_class(attrs=field.widget.attrs)
            widget.is_required = field.widget.is_required
            widget.is_localized = field.widget.is_localized
            field.widget = widget
        # What the widget renders must parse back whatever the active language; the language's
        # own formats still follow, read when parsing (they are lazy: the language is per request).
        if not isinstance(field.input_formats, _IsoFirst):
            # Django only iterates input_formats; the stubs ask for a Collection.
            field.input_formats = _IsoFirst(iso_format, field.input_formats)  # type: ignore[assignment]
        return


class _IsoFirst:
    def __init__(self, iso_format: str, others: Any) -> None:
        self.iso_format, self.others = iso_format, others

    def __iter__(self) -> Iterator[str]:
        yield self.iso_format
        yield from (f for f in self.others if f != self.iso_format)


class StaffForm(forms.Form, metaclass=StaffFormMetaclass):
    """A form for the staff pages. Its date and datetime fields render in the one format the
    browser's date pickers accept, so an edit page saved untouched stores what it showed, and
    its text fields refuse invisible control characters as the API does."""


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def add_service_error(form: forms.BaseForm, exc: Any) -> None:
    """Show a refused business rule beside the field it concerns, else at the top of the form."""
    details = getattr(exc, "details", None) or {}
    for key, messages in details.items():
        field = _snake(key.split(".")[0])
        for message in messages:
            # A rule about something the form has no field for (the items of an invoice as a
            # whole) still says what it is about, at the top.
            form.add_error(field if field in form.fields else None, message)
    if not details:
        form.add_error(None, exc.message)
