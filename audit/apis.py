"""`GET /api/system/audit-logs` (CONTRACT §4): the feed, the errors view and the 24 h stats."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from audit.models import Severity
from audit.selectors import audit_log_page, audit_log_stats
from core.errors import ApplicationError


class SinceField(serializers.DateTimeField):
    # DRF's DateTimeField raises OverflowError (a 500) for naive datetimes at the edge of the
    # calendar, such as 0001-01-01T00:00:00, when it makes them aware in the school's zone.
    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except OverflowError:
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss][+HH:MM]")


class IsFounder(BasePermission):
    message = "Only founders may read the audit log."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role == Role.FOUNDER)


# Query parameters arrive in camelCase; the serializer works in snake_case like every other.
_PARAMS = {
    "type": "type",
    "limit": "limit",
    "after": "after",
    "before": "before",
    "severity": "severity",
    "action": "action",
    "entityType": "entity_type",
    "entityId": "entity_id",
    "userId": "user_id",
    "since": "since",
}


class AuditLogListApi(APIView):
    permission_classes = [IsFounder]

    class InputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(choices=["all", "errors", "stats"], default="all")
        limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
        after = serializers.IntegerField(min_value=0, required=False)
        before = serializers.IntegerField(min_value=1, required=False)
        severity = serializers.ChoiceField(choices=Severity.values, required=False)
        action = serializers.RegexField(r"^[A-Z][A-Z0-9_]{0,63}$", required=False)
        entity_type = serializers.CharField(max_length=64, required=False)
        entity_id = serializers.CharField(max_length=64, required=False)
        user_id = serializers.IntegerField(min_value=1, required=False)
        # Without an offset, the school's time zone (TIME_ZONE) is meant.
        since = SinceField(required=False)

    class EntrySerializer(serializers.Serializer):
        id = serializers.IntegerField()
        action = serializers.CharField()
        severity = serializers.CharField()
        description = serializers.CharField()
        user_id = serializers.IntegerField(allow_null=True)
        user_email = serializers.CharField()
        user_name = serializers.CharField()
        ip_address = serializers.CharField(allow_null=True)
        user_agent = serializers.CharField()
        entity_type = serializers.CharField()
        entity_id = serializers.CharField()
        metadata = serializers.JSONField()
        request_path = serializers.CharField()
        request_method = serializers.CharField()
        request_id = serializers.CharField()
        error_message = serializers.CharField()
        created_at = serializers.DateTimeField()

    class LogsOutputSerializer(serializers.Serializer):
        logs = serializers.ListField(child=serializers.DictField())
        next_cursor = serializers.IntegerField(allow_null=True)

    class StatsSerializer(serializers.Serializer):
        class TopActionSerializer(serializers.Serializer):
            action = serializers.CharField()
            count = serializers.IntegerField()

        class HourSerializer(serializers.Serializer):
            hour = serializers.DateTimeField()
            total = serializers.IntegerField()
            errors = serializers.IntegerField()

        total_logs = serializers.IntegerField()
        info_count = serializers.IntegerField()
        warning_count = serializers.IntegerField()
        error_count = serializers.IntegerField()
        critical_count = serializers.IntegerField()
        top_actions = TopActionSerializer(many=True)
        hourly = HourSerializer(many=True)

    @extend_schema(
        tags=["system"],
        parameters=[
            OpenApiParameter("type", str, enum=["all", "errors", "stats"]),
            OpenApiParameter("limit", int, description="1-200, default 50"),
            OpenApiParameter("after", int, description="Only entries with a higher id (polling)."),
            OpenApiParameter("before", int, description="Only entries with a lower id (history)."),
            OpenApiParameter("severity", str, enum=Severity.values),
            OpenApiParameter("action", str),
            OpenApiParameter("entityType", str),
            OpenApiParameter("entityId", str),
            OpenApiParameter("userId", int),
            OpenApiParameter("since", OpenApiTypes.DATETIME),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        params = _query_params(request)
        data = self.InputSerializer(data=params)
        data.is_valid(raise_exception=True)
        args = dict(data.validated_data)
        kind = args.pop("type")
        if kind == "stats":
            return Response({"stats": self.StatsSerializer(audit_log_stats()).data})
        page = audit_log_page(errors_only=kind == "errors", **args)
        return Response(
            {
                "logs": self.EntrySerializer(page.logs, many=True).data,
                "next_cursor": page.next_cursor,
            }
        )


def _query_params(request: Request) -> dict[str, str]:
    """camelCase query string to snake_case; unknown or repeated parameters are a 400."""
    errors: dict[str, list[str]] = {}
    params: dict[str, str] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if key not in _PARAMS:
            errors[key] = ["Unknown parameter."]
        elif len(values) > 1:
            errors[key] = ["Give this parameter once."]
        else:
            params[_PARAMS[key]] = values[0]
    if errors:
        raise ApplicationError(
            "Some query parameters are not valid.", code="validation_error", details=errors
        )
    return params
