"""A URL conf for tests only: the real API plus views that fail on purpose."""

from django.http import HttpResponse
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Action
from audit.services import AuditEntry, audit_record


class ExplodingApi(APIView):
    def post(self, request):
        raise RuntimeError("database password=hunter2 leaked into a message")


class AuditedApi(APIView):
    def post(self, request):
        request.data  # noqa: B018 - parse the body, as every real endpoint does
        audit_record(
            AuditEntry(Action.LEAD_UPDATED, description="touched", metadata={"password": "p"})
        )
        return Response({"ok": True}, status=201)


def exploding_page(request):
    raise RuntimeError("page broke")


def ok_page(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/test/explode", ExplodingApi.as_view()),
    path("api/test/audited", AuditedApi.as_view()),
    path("test/explode", exploding_page),
    path("test/ok", ok_page),
    path("", include("planbeta.urls")),
]
