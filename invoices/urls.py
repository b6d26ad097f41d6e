from django.urls import path

from invoices import views

app_name = "invoices"

urlpatterns = [
    path("", views.invoice_list, name="list"),
    path("new/for-lead/<int:lead_id>/", views.invoice_create, name="create"),
    path("<int:invoice_id>/", views.invoice_detail, name="detail"),
    path("<int:invoice_id>/edit/", views.invoice_edit, name="edit"),
    path("<int:invoice_id>/pdf/", views.invoice_pdf, name="pdf"),
    path("<int:invoice_id>/send/", views.invoice_send, name="send"),
    path("<int:invoice_id>/cancel/", views.invoice_cancel, name="cancel"),
]
