"""The whole API on one page."""

from typing import Any

from csp.decorators import csp_update
from django.urls import include, path
from djangorestframework_camel_case.render import CamelCaseJSONRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import login_page_for_browsers


class _ErrorsInJson:
    """The schema answers in YAML or JSON and the docs page in HTML, but their errors (401, 405,
    406) are JSON like every other error under /api/."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = CamelCaseJSONRenderer()
            request.accepted_media_type = CamelCaseJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class SchemaView(_ErrorsInJson, SpectacularAPIView):
    pass


class DocsView(_ErrorsInJson, SpectacularSwaggerSplitView):
    pass


urlpatterns = [
    path("", include("accounts.api_urls")),
    path("", include("leads.api_urls")),
    path("", include("invoices.api_urls")),
    path("", include("payments.api_urls")),
    path("system/", include("monitoring.api_urls")),
    path("schema", SchemaView.as_view(), name="api-schema"),
    # Swagger UI sets a few inline styles; scripts stay 'self' only. A page for people: anonymous
    # visitors are sent to the login page.
    path(
        "docs",
        login_page_for_browsers(
            csp_update({"style-src": ["'unsafe-inline'"]})(DocsView.as_view(url_name="api-schema"))
        ),
        name="api-docs",
    ),
]
