"""`{{ amount|money:currency }}` → "₹1,00,000.00", "€1,000.00" (core.money.format_money), the one
money format of every page; the PDF and the e-mail use the same function."""

from __future__ import annotations

from decimal import Decimal

from django import template

from core.money import format_money

register = template.Library()


@register.filter
def money(value: Decimal | None, currency: str) -> str:
    return format_money(value, currency)
