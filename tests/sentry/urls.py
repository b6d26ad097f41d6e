"""Views that fail on purpose, in front of the real URL conf."""

import logging

import sentry_sdk
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.urls import include, path
from rest_framework.views import APIView

from leads.models import Lead

logger = logging.getLogger("tests.sentry")

# A person's data in a row PostgreSQL refuses (a converted lead must have status CONVERTED): its
# CHECK violation quotes the whole row in DETAIL.
REFUSED_LEAD = {
    "name": "Priya Raman",
    "email": "priya.raman@example.com",
    "whatsapp": "+919847012345",
    "source": "GOOGLE",
    "converted": True,
    "status": "NEW",
}


def _save_refused_lead():
    try:
        with transaction.atomic():
            Lead.objects.create(**REFUSED_LEAD)
    except IntegrityError as exc:
        # As a careless handler would: the error in a log line, then up the stack.
        logger.warning("lead not saved: %s", exc)
        raise


def exploding_page(request):
    sentry_sdk.set_extra("payment", {"amount": "134.00", "apiKey": "sk_live_123", "invoice": 7})
    # Built at run time so that only a frame variable (never sent) could carry it, not the source.
    secret_local = "".join(["hun", "ter2", "-local"])
    raise RuntimeError(f"page broke after {len(secret_local)} characters")


def ok_page(request):
    return HttpResponse("ok")


def refused_row_page(request):
    _save_refused_lead()


class RefusedRowApi(APIView):
    def post(self, request):
        try:
            _save_refused_lead()
        except IntegrityError as exc:
            raise RuntimeError(f"saving the lead failed: {exc}") from exc


class ExplodingApi(APIView):
    def post(self, request):
        raise ValueError("api broke")


urlpatterns = [
    path("test/explode", exploding_page),
    path("test/ok", ok_page),
    path("api/system/probe", ok_page),
    path("api/test/explode", ExplodingApi.as_view()),
    path("test/refused-row", refused_row_page),
    path("api/test/refused-row", RefusedRowApi.as_view()),
    path("", include("planbeta.urls")),
]
