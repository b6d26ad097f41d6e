from django.urls import path

from invoices import apis

urlpatterns = [
    path("leads/<int:lead_id>/invoice", apis.InvoiceGenerateApi.as_view(), name="api-lead-invoice"),
    path("invoices", apis.InvoiceListApi.as_view(), name="api-invoices"),
    path("invoices/<int:invoice_id>", apis.InvoiceDetailApi.as_view(), name="api-invoice"),
    path("invoices/<int:invoice_id>/send", apis.InvoiceSendApi.as_view(), name="api-invoice-send"),
    path(
        "invoices/<int:invoice_id>/cancel",
        apis.InvoiceCancelApi.as_view(),
        name="api-invoice-cancel",
    ),
    path("invoices/<int:invoice_id>/pdf", apis.InvoicePdfApi.as_view(), name="api-invoice-pdf"),
]
