from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMoneyStaff
from audit.access import record_access
from core.errors import invalid_parameter
from core.fields import StrictCharField, StrictDateField, StrictEmailField
from core.pagination import (
    LIST_PARAMETERS,
    SEARCH_PARAMETER_SCHEMA,
    KeysetPagination,
    page_serializer,
    query_param,
    search_param,
)
from leads import selectors, services
from leads.fields import LevelField
from leads.models import LeadQuality, LeadSource, LeadStatus, Level
from leads.validators import normalize_phone

# CONVERTED is reached only through pay-and-convert.
EDITABLE_STATUSES = [s for s in LeadStatus.values if s != LeadStatus.CONVERTED]


class PhoneField(StrictCharField):
    """A phone number as a JSON string, stored in E.164 (see leads.validators)."""

    def to_internal_value(self, data: Any) -> str:
        # Not coerced: a JSON number loses a leading 0 or + and is not the string the caller
        # meant; DRF's CharField would quietly turn 4915166419430 into "4915166419430".
        if not isinstance(data, str):
            raise serializers.ValidationError(
                'Send the number as a JSON string, such as "+919847012345".'
            )
        value = super().to_internal_value(data)
        if value == "":
            return value
        try:
            return normalize_phone(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


PHONE_HELP = (
    "A JSON string: any number with its country code (+49 1516 6419430, 4915166419430) or an "
    "Indian number without it (98470 12345). Stored and returned in E.164 (+919847012345)."
)


class LeadInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=150)
    whatsapp = PhoneField(max_length=40, help_text=PHONE_HELP)
    email = StrictEmailField(required=False, allow_blank=True, max_length=254)
    phone = PhoneField(required=False, allow_blank=True, max_length=40, help_text=PHONE_HELP)
    # A field named like Field.source: the serializer's metaclass moves declared fields off the
    # class, so nothing is shadowed, but mypy sees only the class body.
    source = serializers.ChoiceField(choices=LeadSource.choices)  # type: ignore[assignment]
    status = serializers.ChoiceField(choices=EDITABLE_STATUSES, required=False)
    quality = serializers.ChoiceField(choices=LeadQuality.choices, required=False, allow_blank=True)
    interested_level = LevelField()
    notes = StrictCharField(required=False, allow_blank=True, max_length=5000)
    follow_up_date = StrictDateField(required=False, allow_null=True)


class WhatsappHolderSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the student's id in /api/students/{id}")
    student_id = serializers.CharField(help_text="the student code, such as STU-2026-0001")
    name = serializers.CharField()


class LeadOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    whatsapp = serializers.CharField(help_text="E.164, such as +919847012345")
    email = serializers.CharField()
    phone = serializers.CharField()
    source = serializers.ChoiceField(choices=LeadSource.choices)  # type: ignore[assignment]
    status = serializers.ChoiceField(choices=LeadStatus.choices)
    quality = serializers.ChoiceField(choices=LeadQuality.choices, allow_blank=True)
    interested_level = serializers.ChoiceField(choices=Level.choices, allow_blank=True)
    notes = serializers.CharField()
    follow_up_date = serializers.DateField(allow_null=True)
    converted = serializers.BooleanField()
    converted_at = serializers.DateTimeField(allow_null=True)
    student_id = serializers.SerializerMethodField()
    whatsapp_belongs_to = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_student_id(self, lead: Any) -> str | None:
        return selectors.lead_student_code(lead)

    @extend_schema_field(
        WhatsappHolderSerializer(
            allow_null=True,
            help_text=(
                "The student who already has this WhatsApp number (not the one this lead "
                "became), else null. Leads may share a number, students may not: converting "
                "this lead is refused (409 whatsapp_in_use) until its number changes."
            ),
        )
    )
    def get_whatsapp_belongs_to(self, lead: Any) -> dict[str, Any] | None:
        holder = selectors.lead_whatsapp_holder(lead)
        return WhatsappHolderSerializer(holder).data if holder else None


CONVERTED_LEAD = OpenApiResponse(description="lead_converted: a student now; it cannot change.")


class _LeadApi(APIView):
    permission_classes = [IsAuthenticated, IsMoneyStaff]


class LeadCollectionApi(_LeadApi):
    """GET: list leads (filters status, q, converted). POST: create a lead."""

    @extend_schema(
        tags=["leads"],
        operation_id="leads_list",
        parameters=[
            OpenApiParameter("status", str, enum=LeadStatus.values),
            OpenApiParameter(
                "q", SEARCH_PARAMETER_SCHEMA, description="name, e-mail, WhatsApp or phone contains"
            ),
            OpenApiParameter("converted", bool),
            *LIST_PARAMETERS,
        ],
        responses={200: page_serializer(LeadOutputSerializer)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        lead_status = query_param(params, "status") or ""
        if lead_status and lead_status not in LeadStatus.values:
            raise invalid_parameter("status", f"Use one of {', '.join(LeadStatus.values)}.")
        converted_raw = query_param(params, "converted")
        converted = {"true": True, "false": False, None: None}.get(converted_raw)
        if converted_raw is not None and converted is None:
            raise invalid_parameter("converted", "Use true or false.")
        page = KeysetPagination(request)
        leads = page.paginate(
            selectors.lead_list(status=lead_status, q=search_param(params), converted=converted)
        )
        return page.response(LeadOutputSerializer, leads)

    @extend_schema(
        tags=["leads"], request=LeadInputSerializer, responses={201: LeadOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        serializer = LeadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_create(actor=request.user, **serializer.validated_data)
        return Response(
            LeadOutputSerializer(selectors.lead_get(lead.pk)).data, status=status.HTTP_201_CREATED
        )


class LeadDetailApi(_LeadApi):
    """GET one lead, PATCH it (not once converted), DELETE it (not once converted or invoiced)."""

    @extend_schema(tags=["leads"], responses={200: LeadOutputSerializer})
    def get(self, request: Request, lead_id: int) -> Response:
        body = LeadOutputSerializer(selectors.lead_get(lead_id)).data
        record_access(entity_type="Lead", entity_id=lead_id, what="lead_detail", via="api")
        return Response(body)

    @extend_schema(
        tags=["leads"],
        request=LeadInputSerializer,
        responses={200: LeadOutputSerializer, 409: CONVERTED_LEAD},
    )
    def patch(self, request: Request, lead_id: int) -> Response:
        lead = selectors.lead_get(lead_id)
        serializer = LeadInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_update(lead=lead, actor=request.user, **serializer.validated_data)
        return Response(LeadOutputSerializer(selectors.lead_get(lead.pk)).data)

    @extend_schema(
        tags=["leads"],
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: OpenApiResponse(
                description="lead_converted, or lead_has_invoices (cancel them instead)."
            ),
        },
    )
    def delete(self, request: Request, lead_id: int) -> Response:
        services.lead_delete(lead=selectors.lead_get(lead_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
