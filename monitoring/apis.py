"""Probes for process supervisors, load balancers and uptime monitors (CONTRACT §4 System).

These views authenticate on their own: the uptime monitor's `Bearer $HEALTH_CHECK_TOKEN` is not a
user token, and an anonymous or wrongly authenticated caller still gets the summary, never a 401.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import BearerTokenAuthentication
from accounts.models import Role
from monitoring.checks import check_readiness, collect_health, is_health_token


class _SessionIfAvailable(SessionAuthentication):
    """The browser session of a founder, if the session store (the database) answers at all."""

    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except DatabaseError:
            return None


class _ProbeApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        if response.status_code == 503:
            response["Retry-After"] = "30"
        return response


class LivezApi(_ProbeApi):
    """The process answers. Touches neither the database nor Redis."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, tags=["system"])
    def get(self, request: Request) -> Response:
        return Response({"status": "healthy", "timestamp": timezone.now().isoformat()})


class ReadyzApi(_ProbeApi):
    """The database answers within 1 s: send traffic here."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT}, tags=["system"])
    def get(self, request: Request) -> Response:
        ready = check_readiness()
        return Response(
            {
                "status": "healthy" if ready else "unhealthy",
                "timestamp": timezone.now().isoformat(),
            },
            status=200 if ready else 503,
        )


class HealthApi(_ProbeApi):
    """Overall status for everyone; the detailed body for founders and the health-check token."""

    authentication_classes = [_SessionIfAvailable]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT}, tags=["system"])
    def get(self, request: Request) -> Response:
        body, status_code = collect_health(detailed=_may_see_details(request))
        return Response(body, status=status_code)


def _may_see_details(request: Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential:
        if is_health_token(credential.strip()):
            return True
        try:
            user_auth = BearerTokenAuthentication().authenticate(request)
        except exceptions.AuthenticationFailed:
            return False
        except DatabaseError:  # the database is down: the token cannot be checked
            return False
        return user_auth is not None and user_auth[0].role == Role.FOUNDER
    user = request.user
    return bool(user.is_authenticated and user.role == Role.FOUNDER)
