from django.contrib import admin

from core.admin import ReadOnlyAdmin
from payments import batches
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

    # Every way the admin changes a batch goes through payments.batches, which writes the audit
    # row (before and after) in the same transaction.
    def save_model(self, request, obj, form, change):
        if change:
            batches.batch_update(batch=obj, actor=request.user)
        else:
            batches.batch_create(batch=obj, actor=request.user)

    def delete_model(self, request, obj):
        batches.batch_delete(batches=[obj], actor=request.user)

    def delete_queryset(self, request, queryset):
        batches.batch_delete(batches=list(queryset), actor=request.user)
