from django.contrib import admin

from core.admin import ReadOnlyAdmin
from invoices.models import Invoice, InvoiceItem


class InvoiceItemInline(admin.TabularInline):
    model = InvoiceItem
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "lead", "status", "currency", "total_amount", "paid_amount"]
    list_filter = ["status", "currency"]
    search_fields = ["=number", "lead__name"]
    inlines = [InvoiceItemInline]
    list_select_related = ["lead"]
