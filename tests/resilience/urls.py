"""A URL conf for tests only: the site plus views that fail in the ways the error pages handle."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from leads.models import Lead
from planbeta.urls import handler500  # noqa: F401 - the site's own error page, as in production


class SlowApi(APIView):
    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")
        return Response({"ok": True})


def plain_api_view(request):
    """Under /api/ but not a DRF view: its errors reach Django's handler500."""
    return JsonResponse({"leads": Lead.objects.count()})


def plain_api_bug(request):
    raise RuntimeError("a bug outside DRF")


def page_bug(request):
    raise RuntimeError("a bug in a page")


def session_touching_page(request):
    # The session is saved by SessionMiddleware once the view has returned.
    request.session["seen"] = request.session.get("seen", 0) + 1
    return HttpResponse("ok")


urlpatterns = [
    path("api/test/slow", SlowApi.as_view()),
    path("api/test/plain", plain_api_view),
    path("api/test/plain-bug", plain_api_bug),
    path("test/page-bug", page_bug),
    path("test/session", session_touching_page),
    path("", include("planbeta.urls")),
]
