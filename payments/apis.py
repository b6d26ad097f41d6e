from __future__ import annotations

import re
from collections.abc import Callable

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMoneyStaff
from audit.access import record_access
from core.errors import ApplicationError, invalid_field, invalid_parameter
from core.fields import StrictCharField, StrictDateField, StrictIntegerField, StrictRegexField
from core.money import MoneyField
from core.pagination import (
    LIST_PARAMETERS,
    SEARCH_PARAMETER_SCHEMA,
    KeysetPagination,
    page_serializer,
    query_param,
    search_param,
)
from invoices.selectors import invoice_for_payment
from payments import selectors, services
from payments.idempotency import KEY_PATTERN, Answer
from payments.models import PaymentMethod, PaymentStatus
from payments.responses import MoneyResultSerializer, StudentOutputSerializer

IDEMPOTENCY_KEY_RE = re.compile(rf"^{KEY_PATTERN}$")


KEY_MESSAGE = "Use 8 to 128 letters, digits, dots, colons, hyphens or underscores."
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": f"^{KEY_PATTERN}$"},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Instead of idempotencyKey in the body (one of the two is needed; if both are "
    "sent they must be equal).",
)
PAYMENT_CONFLICTS = OpenApiResponse(
    description="already_converted, invoice_not_payable, not_converted, batch_full, "
    "whatsapp_in_use, or request_in_flight (the same key is being processed right now)."
)
KEY_REUSED = OpenApiResponse(
    description="idempotency_key_reused: this key was used with another payload or invoice."
)


def idempotency_key_from(request: Request, body_key: str) -> str:
    header_key = request.headers.get("Idempotency-Key", "").strip()
    if body_key and header_key and body_key != header_key:
        raise _key_error("The Idempotency-Key header and idempotencyKey in the body differ.")
    key = body_key or header_key
    if not key:
        raise _key_error("Send an idempotency key (for example a UUID) with every payment.")
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise _key_error(KEY_MESSAGE)
    return key


def _key_error(message: str) -> ApplicationError:
    return invalid_field("idempotencyKey", message)


def _respond(answer: Answer) -> Response:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Response(answer.body, status=answer.status_code, headers=headers)


class _MoneyApi(APIView):
    permission_classes = [IsAuthenticated, IsMoneyStaff]


class _PaymentInput(serializers.Serializer):
    """What every payment carries; each operation adds its amount field."""

    method = serializers.ChoiceField(
        choices=PaymentMethod.choices, default=PaymentMethod.BANK_TRANSFER
    )
    transaction_id = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    # Blank when the key comes in the Idempotency-Key header instead.
    idempotency_key = StrictRegexField(
        rf"^{KEY_PATTERN}$",
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        error_messages={"invalid": KEY_MESSAGE},
    )
    paid_on = StrictDateField(
        required=False,
        default=None,
        help_text=(
            "The day the money was received (YYYY-MM-DD): today or earlier; today if left out."
        ),
    )


def _pay(
    request: Request,
    invoice_id: int,
    serializer_class: type[serializers.Serializer],
    service: Callable[..., Answer],
) -> Response:
    """Validate the body (after the invoice is found) and hand its fields to the money service,
    with the idempotency key from the body or the header."""
    invoice = invoice_for_payment(invoice_id)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    key = idempotency_key_from(request, data.pop("idempotency_key"))
    return _respond(service(invoice=invoice, idempotency_key=key, actor=request.user, **data))


class PayAndConvertApi(_MoneyApi):
    @extend_schema_serializer(component_name="PayAndConvertInput")
    class InputSerializer(_PaymentInput):
        paid_amount = MoneyField(source="amount")
        batch_id = StrictIntegerField(required=False, allow_null=True, min_value=1, default=None)

    @extend_schema(
        tags=["payments"],
        request=InputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: MoneyResultSerializer, 409: PAYMENT_CONFLICTS, 422: KEY_REUSED},
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        return _pay(request, invoice_id, self.InputSerializer, services.pay_and_convert)


class PaymentRecordApi(_MoneyApi):
    @extend_schema_serializer(component_name="PaymentInput")
    class InputSerializer(_PaymentInput):
        amount = MoneyField()

    @extend_schema(
        tags=["payments"],
        request=InputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: MoneyResultSerializer, 409: PAYMENT_CONFLICTS, 422: KEY_REUSED},
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        return _pay(request, invoice_id, self.InputSerializer, services.payment_record)


class StudentListApi(_MoneyApi):
    @extend_schema(
        tags=["students"],
        operation_id="students_list",
        parameters=[
            OpenApiParameter(
                "q", SEARCH_PARAMETER_SCHEMA, description="name, student code or WhatsApp contains"
            ),
            OpenApiParameter("paymentStatus", str, enum=PaymentStatus.values),
            *LIST_PARAMETERS,
        ],
        responses={200: page_serializer(StudentOutputSerializer)},
    )
    def get(self, request: Request) -> Response:
        payment_status = query_param(request.query_params, "paymentStatus") or ""
        if payment_status and payment_status not in PaymentStatus.values:
            raise invalid_parameter(
                "paymentStatus", f"Use one of {', '.join(PaymentStatus.values)}."
            )
        page = KeysetPagination(request)
        students = page.paginate(
            selectors.student_list(
                q=search_param(request.query_params), payment_status=payment_status
            )
        )
        return page.response(StudentOutputSerializer, students)


class StudentDetailApi(_MoneyApi):
    @extend_schema(tags=["students"], responses={200: StudentOutputSerializer})
    def get(self, request: Request, student_id: int) -> Response:
        body = StudentOutputSerializer(selectors.student_get(student_id)).data
        record_access(entity_type="Student", entity_id=student_id, what="student_detail", via="api")
        return Response(body)
