"""The whole API on one page."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api_urls")),
]
