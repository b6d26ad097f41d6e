"""Every page, the PDF and the e-mail show money one way: `core.money.format_money` (Babel), in
templates through the `money` filter. A template that writes a currency code beside a bare
amount, or rounds an amount to two decimals itself, fails here."""

import re
from pathlib import Path

import pytest
from django.template import Context, Template

ROOT = Path(__file__).resolve().parents[2]
HAND_MADE = re.compile(r"\{\{\s*[\w.]+\.currency\s*\}\}\s*\{\{|floatformat:\"?2")
TEMPLATES = sorted(
    str(p.relative_to(ROOT / "templates"))
    for p in (ROOT / "templates").rglob("*")
    if p.suffix in (".html", ".txt")
)


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_show_money_only_through_the_money_filter(template):
    text = (ROOT / "templates" / template).read_text()

    assert not HAND_MADE.search(text), f"{template} formats money by hand"


def test_the_filter_is_the_one_format():
    rendered = Template("{% load money %}{{ a|money:'INR' }} | {{ b|money:'EUR' }}").render(
        Context({"a": 100000, "b": 1000})
    )

    assert rendered == "₹1,00,000.00 | €1,000.00"
