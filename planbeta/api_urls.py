"""The whole API on one page."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api_urls")),
    path("", include("leads.api_urls")),
    path("", include("invoices.api_urls")),
    path("", include("payments.api_urls")),
]
