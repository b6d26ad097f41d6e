"""Read a rendered form back as a browser would submit it, untouched."""

from __future__ import annotations

import datetime
from html.parser import HTMLParser


def _valid_date(value: str) -> bool:
    try:
        return datetime.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


def _valid_local_datetime(value: str) -> bool:
    date, sep, time = value.partition("T")
    try:
        datetime.time.fromisoformat(time)
    except ValueError:
        return False
    return sep == "T" and _valid_date(date) and len(time) in (5, 8, 10, 11, 12)


# A browser's value sanitization (HTML "input" element, per type): a value it cannot show is
# replaced by the empty string, which is then what the form submits.
_SANITIZE = {"date": _valid_date, "datetime-local": _valid_local_datetime}


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[list[tuple[str, str]], dict[str, dict[str, str]]]] = []
        self.fields: list[tuple[str, str]] = []
        self.inputs: dict[str, dict[str, str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._select_options: list[tuple[str, bool]] = []
        self._option: dict[str, str] | None = None
        self._option_text = ""
        self._textarea: str | None = None
        self._textarea_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._in_form = True
            self.fields, self.inputs = [], {}
            self.forms.append((self.fields, self.inputs))
        if not self._in_form:
            return
        if tag == "input" and "name" in a:
            self.inputs[a["name"]] = a
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            value = a.get("value", "on" if kind == "checkbox" else "")
            if kind in _SANITIZE and not _SANITIZE[kind](value):
                value = ""
            self.fields.append((a["name"], value))
        elif tag == "select" and "name" in a:
            self._select, self._select_options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._option, self._option_text = a, ""
        elif tag == "textarea" and "name" in a:
            self._textarea, self._textarea_text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option_text += data
        if self._textarea is not None:
            self._textarea_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "option" and self._option is not None:
            value = self._option.get("value", self._option_text)
            self._select_options.append((value, "selected" in self._option))
            self._option = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._select_options if selected]
            # With nothing marked selected, a browser submits the first option.
            value = chosen[0] if chosen else (self._select_options or [("", False)])[0][0]
            self.fields.append((self._select, value))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # The HTML parser drops the newline that may follow <textarea>, as browsers do.
            text = self._textarea_text
            self.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None


def read_post_form(html: str, *, having: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """What a browser submits for the POST form with a field named `having` when nobody touches
    it (name → value), and the attributes of each of its inputs as rendered."""
    reader = _FormReader()
    reader.feed(html)
    for fields, inputs in reader.forms:
        submitted = dict(fields)
        if having in submitted or having in inputs:
            return submitted, inputs
    raise AssertionError(f"no POST form with a field {having!r}")
