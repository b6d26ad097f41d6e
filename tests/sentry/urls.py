"""Views that fail on purpose, in front of the real URL conf."""

import sentry_sdk
from django.http import HttpResponse
from django.urls import include, path
from rest_framework.views import APIView


def exploding_page(request):
    sentry_sdk.set_extra("payment", {"amount": "134.00", "apiKey": "sk_live_123", "invoice": 7})
    # Built at run time so that only a frame variable (never sent) could carry it, not the source.
    secret_local = "".join(["hun", "ter2", "-local"])
    raise RuntimeError(f"page broke after {len(secret_local)} characters")


def ok_page(request):
    return HttpResponse("ok")


class ExplodingApi(APIView):
    def post(self, request):
        raise ValueError("api broke")


urlpatterns = [
    path("test/explode", exploding_page),
    path("test/ok", ok_page),
    path("api/system/probe", ok_page),
    path("api/test/explode", ExplodingApi.as_view()),
    path("", include("planbeta.urls")),
]
