from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("invoice/<int:invoice_id>/convert/", views.pay_and_convert, name="pay_and_convert"),
    path("invoice/<int:invoice_id>/record/", views.payment_create, name="create"),
    path("students/", views.student_list, name="students"),
]
