from django.urls import path

from payments import apis

urlpatterns = [
    path(
        "invoices/<int:invoice_id>/pay-and-convert",
        apis.PayAndConvertApi.as_view(),
        name="api-invoice-pay-and-convert",
    ),
    path(
        "invoices/<int:invoice_id>/payments",
        apis.PaymentRecordApi.as_view(),
        name="api-invoice-payments",
    ),
    path("students", apis.StudentListApi.as_view(), name="api-students"),
    path("students/<int:student_id>", apis.StudentDetailApi.as_view(), name="api-student"),
]
