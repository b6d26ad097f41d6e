from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMoneyStaff
from audit.access import record_access
from core.errors import invalid_parameter
from core.fields import StrictCharField, StrictDateField
from core.money import CurrencyField, MoneyField
from core.pagination import LIST_PARAMETERS, KeysetPagination, page_serializer, query_param
from invoices import pdf, selectors, services
from invoices.models import InvoiceStatus
from invoices.responses import InvoiceOutputSerializer, invoice_body
from leads.fields import LevelField
from leads.selectors import lead_get


class ItemInputSerializer(serializers.Serializer):
    description = StrictCharField(max_length=200)
    amount = MoneyField()
    level = LevelField()
    month = StrictCharField(max_length=20, required=False, allow_blank=True)
    batch = StrictCharField(max_length=60, required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A PATCH validates the invoice partially and DRF hands that down to the items, but an
        # item is always replaced whole.
        missing = [name for name in ("description", "amount") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                {name: ["This field is required."] for name in missing}
            )
        return attrs


_ITEMS_COUNT = f"Add between 1 and {services.MAX_ITEMS} items."


class InvoiceInputSerializer(serializers.Serializer):
    currency = CurrencyField()
    # many=True hands min_length and max_length to the ListSerializer; the stubs do not say so.
    items = ItemInputSerializer(  # type: ignore[call-arg]
        many=True,
        allow_empty=False,
        min_length=1,
        max_length=services.MAX_ITEMS,
        error_messages={
            "empty": _ITEMS_COUNT,
            "min_length": _ITEMS_COUNT,
            "max_length": _ITEMS_COUNT,
        },
    )
    discount = MoneyField(allow_zero=True, required=False)
    payable_now = MoneyField(required=False)
    due_date = StrictDateField(required=False)
    notes = StrictCharField(max_length=5000, required=False, allow_blank=True)


def invoice_data(invoice_id: int) -> dict[str, Any]:
    return invoice_body(selectors.invoice_get(invoice_id))


class _InvoiceApi(APIView):
    permission_classes = [IsAuthenticated, IsMoneyStaff]


class InvoiceGenerateApi(_InvoiceApi):
    @extend_schema(
        tags=["invoices"],
        request=InvoiceInputSerializer,
        responses={
            201: InvoiceOutputSerializer,
            409: OpenApiResponse(description="lead_converted: the lead is already a student."),
        },
    )
    def post(self, request: Request, lead_id: int) -> Response:
        lead = lead_get(lead_id)
        serializer = InvoiceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice = services.invoice_generate(
            lead=lead, actor=request.user, **serializer.validated_data
        )
        return Response(invoice_data(invoice.pk), status=status.HTTP_201_CREATED)


class InvoiceListApi(_InvoiceApi):
    @extend_schema(
        tags=["invoices"],
        operation_id="invoices_list",
        parameters=[
            OpenApiParameter("status", str, enum=InvoiceStatus.values),
            OpenApiParameter("leadId", {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}),
            *LIST_PARAMETERS,
        ],
        responses={200: page_serializer(InvoiceOutputSerializer)},
    )
    def get(self, request: Request) -> Response:
        invoice_status = query_param(request.query_params, "status") or ""
        if invoice_status and invoice_status not in InvoiceStatus.values:
            raise invalid_parameter("status", f"Use one of {', '.join(InvoiceStatus.values)}.")
        lead_raw = query_param(request.query_params, "leadId") or ""
        if lead_raw and not re.fullmatch(r"[0-9]{1,18}", lead_raw):
            raise invalid_parameter("leadId", "Use a lead id (a whole number).")
        page = KeysetPagination(request)
        invoices = page.paginate(
            selectors.invoice_list(
                status=invoice_status, lead_id=int(lead_raw) if lead_raw else None
            )
        )
        return page.response(InvoiceOutputSerializer, invoices)


class InvoiceDetailApi(_InvoiceApi):
    @extend_schema(tags=["invoices"], responses={200: InvoiceOutputSerializer})
    def get(self, request: Request, invoice_id: int) -> Response:
        return Response(invoice_data(invoice_id))

    @extend_schema(
        tags=["invoices"],
        request=InvoiceInputSerializer,
        responses={
            200: InvoiceOutputSerializer,
            409: OpenApiResponse(
                description="invoice_not_editable (paid or cancelled) or invoice_being_sent (its "
                "e-mail is on its way; repeat once it has gone)."
            ),
        },
    )
    def patch(self, request: Request, invoice_id: int) -> Response:
        invoice = selectors.invoice_get(invoice_id)
        serializer = InvoiceInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.invoice_update(invoice=invoice, actor=request.user, **serializer.validated_data)
        return Response(invoice_data(invoice_id))


class InvoiceCancelApi(_InvoiceApi):
    @extend_schema_serializer(component_name="InvoiceCancelInput")
    class InputSerializer(serializers.Serializer):
        reason = StrictCharField(max_length=1000, required=False, allow_blank=True)

    @extend_schema(
        tags=["invoices"],
        request=InputSerializer,
        responses={
            200: InvoiceOutputSerializer,
            409: OpenApiResponse(
                description="invoice_has_payments (money was received), invoice_cancelled, or "
                "invoice_being_sent (its e-mail is on its way; repeat once it has gone)."
            ),
        },
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        invoice = selectors.invoice_get(invoice_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.invoice_cancel(
            invoice=invoice, reason=serializer.validated_data.get("reason", ""), actor=request.user
        )
        return Response(invoice_data(invoice_id))


class InvoiceSendApi(_InvoiceApi):
    @extend_schema(
        tags=["invoices"],
        request=None,
        responses={
            200: InvoiceOutputSerializer,
            400: OpenApiResponse(description="lead_has_no_email: add an e-mail to the lead first."),
            409: OpenApiResponse(
                description="invoice_not_sendable (paid or cancelled) or invoice_being_sent "
                "(another send of it is on its way)."
            ),
            502: OpenApiResponse(description="email_failed: the mail server refused or was down."),
        },
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        services.invoice_send(invoice=selectors.invoice_get(invoice_id), actor=request.user)
        return Response(invoice_data(invoice_id))


class InvoicePdfApi(_InvoiceApi):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The document is a PDF whatever the Accept header says (even `application/pdf`, which
        # no renderer names); the JSON renderer is only for the error bodies.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(tags=["invoices"], responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def get(self, request: Request, invoice_id: int) -> HttpResponse:
        invoice = selectors.invoice_get(invoice_id)
        response = HttpResponse(pdf.render_invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
        record_access(entity_type="Invoice", entity_id=invoice.pk, what="invoice_pdf", via="api")
        return response
