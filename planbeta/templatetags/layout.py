"""Tags of the shared layout that must work without a request, a user or the database."""

from __future__ import annotations

from django import template

from audit.context import current_context

register = template.Library()


@register.simple_tag
def request_id() -> str:
    """The id of the request being answered, from the audit context the first middleware opened.

    Django renders 500.html without a context (no request, no user: they may be what failed), so
    the error page reads the id from where every audit row of the request reads it.
    """
    return current_context().request_id or ""
