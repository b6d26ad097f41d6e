from django.contrib import admin

from core.admin import ReadOnlyAdmin
from payments.models import Batch, IdempotencyRecord, Payment, Student


@admin.register(Student)
class StudentAdmin(ReadOnlyAdmin):
    list_display = ["student_code", "name", "whatsapp", "currency", "total_paid", "payment_status"]
    list_filter = ["payment_status", "currency"]
    search_fields = ["=student_code", "name", "whatsapp"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["paid_at", "student", "invoice", "amount", "currency", "method"]
    list_filter = ["method", "currency"]
    list_select_related = ["student", "invoice"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ["claimed_at", "operation", "key", "invoice_id", "state", "status_code"]
    list_filter = ["operation", "state"]
    search_fields = ["=key"]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["code", "level", "timing", "seats", "start_date"]
    # Its admin widget drops microseconds, so an editable creation time would change on every
    # save; and when a batch was created is not for editing anyway.
    readonly_fields = ["created_at"]
