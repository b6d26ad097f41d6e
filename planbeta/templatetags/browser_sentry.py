from django import template

from planbeta.browser_sentry import page_config

register = template.Library()


@register.inclusion_tag("browser_sentry.html", takes_context=True)
def browser_sentry(context: template.Context) -> dict:
    """The SDK's script tags and settings as JSON, or nothing (planbeta/browser_sentry.py)."""
    request = context.get("request")
    return {"config": page_config(request) if request is not None else None}
