from django import template

from leads.validators import format_phone

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """A stored number as staff read it: {{ lead.whatsapp|phone }} → +91 98470 12345."""
    return format_phone(value)
