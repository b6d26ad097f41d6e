"""The system API (CONTRACT §4 System): the probes and the audit-log feed.

The probes are for process supervisors, load balancers and uptime monitors. They authenticate on
their own: the uptime monitor's `Bearer $HEALTH_CHECK_TOKEN` is not a user token, and an anonymous
or wrongly authenticated caller still gets the summary, never a 401.

`GET /api/system/audit-logs` is the founders' feed, its errors view and the 24 h stats.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from djangorestframework_camel_case.render import CamelCaseJSONRenderer
from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import camelize
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import BearerTokenAuthentication
from accounts.permissions import IsFounder, is_founder
from audit.access import record_access
from audit.models import Severity
from audit.selectors import (
    SEARCH_MAX_LENGTH,
    SEARCH_MIN_LENGTH,
    UNSEARCHABLE_MESSAGE,
    audit_log_matching,
    audit_log_page,
    audit_log_stats,
    searchable,
)
from core.errors import QUERY_VALIDATION_MESSAGE, validation_details, validation_error
from core.fields import (
    MAX_ID,
    StrictCharField,
    StrictIntegerField,
    StrictRegexField,
    TimestampField,
)
from monitoring.checks import (
    MONEY,
    SITE,
    UNHEALTHY,
    check_readiness,
    health_report,
    http_status,
    is_health_token,
    report_body,
)
from monitoring.entities import history_start, label_rows, related_entities
from monitoring.export import FORMATS, stream
from monitoring.health_format import HEALTH_JSON, STATUS_HEADER, ietf_body


class _SessionIfAvailable(SessionAuthentication):
    """The browser session of a founder, if the session store (the database) answers at all."""

    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except DatabaseError:
            return None


class _HealthTokenAuthentication(BearerTokenAuthentication):
    """A user token shown to health: the summary is the answer either way, so lookups that find
    nothing have a budget (HEALTH_TOKEN_MISSES_PER_MINUTE)."""

    miss_budget_setting = "HEALTH_TOKEN_MISSES_PER_MINUTE"


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


class ProbeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    timestamp = serializers.DateTimeField()


class HealthSerializer(serializers.Serializer):
    """The summary for everyone; founders and the health token also get the rest."""

    status = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy"])
    timestamp = serializers.DateTimeField()
    response_time = serializers.CharField(required=False, help_text='e.g. "45ms"')
    checks = serializers.DictField(
        child=serializers.DictField(), required=False, help_text="check name → its report"
    )
    version = serializers.CharField(required=False)
    environment = serializers.CharField(required=False)


_UNHEALTHY = "unhealthy (with Retry-After: 30)"


class LivezApi(_ProbeApi):
    """The process answers. Touches neither the database nor Redis."""

    @extend_schema(responses={200: ProbeSerializer}, tags=["system"])
    def get(self, request: Request) -> Response:
        return Response({"status": "healthy", "timestamp": timezone.now().isoformat()})


class ReadyzApi(_ProbeApi):
    """The database answers within 1 s: send traffic here."""

    @extend_schema(
        responses={
            200: ProbeSerializer,
            503: OpenApiResponse(response=ProbeSerializer, description=_UNHEALTHY),
        },
        tags=["system"],
    )
    def get(self, request: Request) -> Response:
        ready = check_readiness()
        return Response(
            {
                "status": "healthy" if ready else "unhealthy",
                "timestamp": timezone.now().isoformat(),
            },
            status=200 if ready else 503,
        )


class HealthJSONRenderer(JSONRenderer):
    """The IETF health check format: its keys are spelled as the draft spells them."""

    media_type = HEALTH_JSON
    format = "health+json"


class _HealthNegotiation(DefaultContentNegotiation):
    """Accept with its q-values (Django's `get_preferred_type`): `application/health+json;q=1,
    */*` gets health+json, `*/*` and no Accept the default JSON. An Accept that names neither gets
    the default JSON too, not a 406: a monitor sending `text/html` must still see the status."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        choices = list(renderers)
        preferred = request._request.get_preferred_type([r.media_type for r in choices])
        renderer = next((r for r in choices if r.media_type == preferred), choices[0])
        return renderer, renderer.media_type


class IetfCheckSerializer(serializers.Serializer):
    component_id = serializers.CharField(required=False)
    component_type = serializers.CharField()
    observed_value = serializers.JSONField(required=False)
    observed_unit = serializers.CharField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    time = serializers.DateTimeField()
    output = serializers.CharField(required=False)


class IetfHealthSerializer(serializers.Serializer):
    """application/health+json; `checks` and `releaseId` for founders and the health token."""

    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    service_id = serializers.CharField()
    description = serializers.CharField()
    release_id = serializers.CharField(required=False)
    output = serializers.CharField(required=False)
    checks = serializers.DictField(
        child=IetfCheckSerializer(many=True),
        required=False,
        help_text='"component:measurement" → its measurements',
    )


def _health_responses() -> dict[Any, Any]:
    responses: dict[Any, Any] = {}
    for code, description in ((200, "healthy or degraded"), (503, _UNHEALTHY)):
        for media_type, serializer in (
            ("application/json", HealthSerializer),
            (HEALTH_JSON, IetfHealthSerializer),
        ):
            responses[(code, media_type)] = OpenApiResponse(
                response=serializer, description=description
            )
    return responses


class HealthApi(_ProbeApi):
    """Overall status for everyone; the detailed body for founders and the health-check token.

    Every answer says the status in `X-Health-Status` too (healthy, degraded, unhealthy), for
    monitors that can only match a header or a status code.
    """

    authentication_classes = [_SessionIfAvailable]
    renderer_classes = [CamelCaseJSONRenderer, HealthJSONRenderer]
    content_negotiation_class = _HealthNegotiation
    scope = SITE

    # DRF's `?format=` is not read here (Accept alone chooses), so the schema does not offer it.
    @extend_schema(
        responses=_health_responses(),
        parameters=[OpenApiParameter("format", exclude=True)],
        tags=["system"],
    )
    def get(self, request: Request) -> Response:
        report = health_report()
        detailed = _may_see_details(request)
        status = report.status(self.scope)
        if request.accepted_media_type == HEALTH_JSON:
            body = ietf_body(report, scope=self.scope, detailed=detailed)
        else:
            body = report_body(report, scope=self.scope, detailed=detailed)
        response = Response(body, status=http_status(status))
        response[STATUS_HEADER] = status
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # An error in the view itself (a 500) still tells a header-matching monitor something.
        if STATUS_HEADER not in response and response.status_code >= 500:
            response[STATUS_HEADER] = UNHEALTHY
        patch_vary_headers(response, ["Accept"])
        return response


class MoneyHealthApi(HealthApi):
    """Money operations only: the database and the `moneyOperations` check. Page on its 503."""

    scope = MONEY


def _may_see_details(request: Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential:
        if is_health_token(credential.strip()):
            return True
        try:
            user_auth = _HealthTokenAuthentication().authenticate(request)
        except exceptions.AuthenticationFailed:
            return False
        except DatabaseError:  # the database is down: the token cannot be checked
            return False
        return user_auth is not None and is_founder(user_auth[0])
    return is_founder(request.user)


ACTION_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"

ENTITY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"}
TIMESTAMP_SCHEMA = {"type": "string", "format": "date-time", "maxLength": 40}

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
    "q": "q",
}


class AuditLogEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    description = serializers.CharField()
    user_id = serializers.IntegerField(allow_null=True)
    user_email = serializers.CharField()
    user_name = serializers.CharField()
    ip_address = serializers.CharField(allow_null=True)
    user_agent = serializers.CharField()
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    entity_label = serializers.CharField(
        allow_null=True,
        read_only=True,
        default=None,
        help_text="The entity's name for people (an invoice's number, a lead's name, a "
        "student's code), as it is now; null when it has none (e.g. a deleted lead).",
    )
    metadata = serializers.JSONField()
    request_path = serializers.CharField()
    request_method = serializers.CharField()
    request_id = serializers.CharField()
    error_message = serializers.CharField()
    created_at = serializers.DateTimeField()


class AuditLogPageSerializer(serializers.Serializer):
    logs = AuditLogEntrySerializer(many=True, help_text="Newest first.")
    next_cursor = serializers.IntegerField(
        allow_null=True, help_text="Pass back as `after` to get only newer entries."
    )


class AuditLogStatsSerializer(serializers.Serializer):
    class TopActionSerializer(serializers.Serializer):
        action = serializers.CharField()
        count = serializers.IntegerField()

    class HourSerializer(serializers.Serializer):
        hour = serializers.DateTimeField()
        total = serializers.IntegerField()
        # The API's name for it; the serializer's metaclass moves a declared field off the class,
        # so it does not shadow Serializer.errors, but mypy sees only the class body.
        errors = serializers.IntegerField()  # type: ignore[assignment]

    total_logs = serializers.IntegerField()
    info_count = serializers.IntegerField()
    warning_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    critical_count = serializers.IntegerField()
    top_actions = TopActionSerializer(many=True)
    hourly = HourSerializer(many=True)


class AuditLogStatsAnswerSerializer(serializers.Serializer):
    stats = AuditLogStatsSerializer(help_text="The last 24 hours.")


# The filters the feed and the export share.
_FILTER_PARAMETERS = [
    OpenApiParameter(
        "after",
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        description="Only entries with a higher id (polling); not with `before`.",
    ),
    OpenApiParameter(
        "before",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        description="Only entries with a lower id (history); not with `after`.",
    ),
    OpenApiParameter("severity", str, enum=Severity.values),
    OpenApiParameter("action", {"type": "string", "pattern": ACTION_PATTERN}),
    OpenApiParameter("entityType", ENTITY_SCHEMA),
    OpenApiParameter(
        "entityId",
        ENTITY_SCHEMA,
        description="Only with `entityType`. An invoice's history (`entityType=Invoice`) "
        "includes the rows of its payments (`entityType` `Payment`).",
    ),
    OpenApiParameter("userId", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
    OpenApiParameter(
        "since",
        TIMESTAMP_SCHEMA,
        description="ISO 8601; without an offset the school's time zone.",
    ),
    OpenApiParameter(
        "q",
        {"type": "string", "minLength": SEARCH_MIN_LENGTH, "maxLength": SEARCH_MAX_LENGTH},
        description="Free text found anywhere in the description, case-insensitively. "
        f"{SEARCH_MIN_LENGTH}-{SEARCH_MAX_LENGTH} characters (spaces at the ends are dropped), "
        "with at least three letters or digits in a row.",
    ),
]


class AuditLogListApi(APIView):
    permission_classes = [IsFounder]

    class InputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(choices=["all", "errors", "stats"], default="all")
        limit = StrictIntegerField(min_value=1, max_value=200, default=50)
        after = StrictIntegerField(min_value=0, required=False)
        before = StrictIntegerField(min_value=1, required=False)
        severity = serializers.ChoiceField(choices=Severity.values, required=False)
        action = StrictRegexField(ACTION_PATTERN, required=False)
        entity_type = StrictCharField(max_length=64, required=False)
        entity_id = StrictCharField(max_length=64, required=False)
        user_id = StrictIntegerField(min_value=1, required=False)
        # Without an offset, the school's time zone (TIME_ZONE) is meant.
        since = TimestampField(required=False)
        q = StrictCharField(
            min_length=SEARCH_MIN_LENGTH, max_length=SEARCH_MAX_LENGTH, required=False
        )

        def validate_q(self, value: str) -> str:
            if not searchable(value):
                raise serializers.ValidationError(UNSEARCHABLE_MESSAGE)
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            errors = {}
            # Ids are unique only within a type: "entity 7" alone names a lead, an invoice...
            if "entity_id" in attrs and "entity_type" not in attrs:
                errors["entity_id"] = ["Give entityType together with entityId."]
            if "after" in attrs and "before" in attrs:
                errors["before"] = [
                    "Use after (to poll for newer entries) or before (to page back), not both."
                ]
            if errors:
                raise serializers.ValidationError(errors)
            return attrs

    @extend_schema(
        tags=["system"],
        parameters=[
            OpenApiParameter("type", str, enum=["all", "errors", "stats"]),
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": 200}, description="default 50"
            ),
            *_FILTER_PARAMETERS,
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="AuditLogAnswer",
                serializers=[AuditLogPageSerializer, AuditLogStatsAnswerSerializer],
                resource_type_field_name=None,
            )
        },
    )
    def get(self, request: Request) -> Response:
        args = _validated(self.InputSerializer, _query_params(request))
        kind = args.pop("type")
        if kind == "stats":
            return Response({"stats": AuditLogStatsSerializer(audit_log_stats()).data})
        args = _with_related(args)
        page = audit_log_page(
            errors_only=kind == "errors", written_after=_history_start(args), **args
        )
        return Response(
            {
                "logs": AuditLogEntrySerializer(label_rows(page.logs), many=True).data,
                "next_cursor": page.next_cursor,
            }
        )


def _with_related(args: dict[str, Any]) -> dict[str, Any]:
    # An entity's history includes the rows of the records that belong to it (an invoice's
    # payments), in the feed and the export alike.
    if args.get("entity_type") and args.get("entity_id"):
        args["related"] = related_entities(args["entity_type"], args["entity_id"])
    return args


def _history_start(args: dict[str, Any]) -> datetime | None:
    # An entity's history is no older than the entity: the months before it are not read.
    if args.get("entity_type") and args.get("entity_id"):
        return history_start([(args["entity_type"], args["entity_id"]), *args.get("related", ())])
    return None


def _validated(serializer_class: Any, params: dict[str, str]) -> dict[str, Any]:
    data = serializer_class(data=params)
    if not data.is_valid():
        raise validation_error(validation_details(data.errors), message=QUERY_VALIDATION_MESSAGE)
    return dict(data.validated_data)


class AuditLogExportApi(APIView):
    """Every entry the feed's filters select, streamed as CSV or JSON Lines, oldest first."""

    permission_classes = [IsFounder]

    class InputSerializer(AuditLogListApi.InputSerializer):
        format = serializers.ChoiceField(choices=list(FORMATS))
        type = serializers.ChoiceField(choices=["all", "errors"], default="all")
        # Everything that matches: None takes the inherited field out, as DRF documents.
        limit = None  # type: ignore[assignment]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # `format` is this endpoint's own parameter (csv or jsonl), not DRF's renderer override:
        # the JSON renderer stays, for the error bodies.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        tags=["system"],
        parameters=[
            OpenApiParameter("format", str, enum=list(FORMATS), required=True),
            OpenApiParameter("type", str, enum=["all", "errors"]),
            *_FILTER_PARAMETERS,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="A header row, then one row per entry (the feed's keys); metadata as "
                "JSON; cells that a spreadsheet would run as a formula start with an apostrophe.",
            ),
            (200, "application/x-ndjson"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="One JSON object per line, as the audit-log feed gives each entry.",
            ),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = _query_params(request, _EXPORT_NAMES)
        args = _validated(self.InputSerializer, params)
        fmt = args.pop("format")
        kind = args.pop("type")
        args = _with_related(args)
        rows = audit_log_matching(errors_only=kind == "errors", **args)
        # Which export this was: the same one again within the hour is one DATA_ACCESSED row.
        query = {key: params[name] for key, name in _EXPORT_NAMES.items() if name in params}
        digest = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
        # The digest tells one query from another; the row keeps the search text out, since
        # free text may be a person's name (no personal data in audit metadata).
        if "q" in query:
            query["q"] = f"({len(args['q'])} characters)"
        record_access(
            entity_type="AuditLog",
            entity_id=digest,
            what="audit_log_export",
            via="api",
            metadata={"query": query},
            actor=request.user,
        )
        serializer = AuditLogEntrySerializer()
        # keys(): djangorestframework-stubs type a BindingDict's iteration as its fields.
        columns = list(_camel({name: None for name in serializer.fields.keys()}))  # noqa: SIM118

        def entry(row: Any) -> dict[str, Any]:
            return _camel(serializer.to_representation(row))

        response = StreamingHttpResponse(
            stream(
                rows,
                fmt=fmt,
                entry=entry,
                columns=columns,
                prepare=label_rows,
                bounds={
                    **{key: args.get(key) for key in ("after", "before", "since")},
                    "not_before": _history_start(args),
                },
            ),
            content_type=FORMATS[fmt],
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response


# The feed's parameters but `limit`, and `format`.
_EXPORT_NAMES = {**{k: v for k, v in _PARAMS.items() if k != "limit"}, "format": "format"}


def _camel(data: dict[str, Any]) -> dict[str, Any]:
    # As the API's renderer writes its bodies (metadata keys left as they were stored).
    return camelize(data, **camel_settings.JSON_UNDERSCOREIZE)


def _query_params(request: Request, names: dict[str, str] = _PARAMS) -> dict[str, str]:
    """camelCase query string to snake_case; unknown or repeated parameters are a 400."""
    errors: dict[str, list[str]] = {}
    params: dict[str, str] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if key not in names:
            errors[key] = ["Unknown parameter."]
        elif len(values) > 1:
            errors[key] = ["Give this parameter once."]
        else:
            params[names[key]] = values[0]
    if errors:
        raise validation_error(errors, message=QUERY_VALIDATION_MESSAGE)
    return params
