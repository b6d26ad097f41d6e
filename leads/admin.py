from django.contrib import admin
from django.http import HttpRequest

from leads.models import Lead


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money and leads change only through their services, which write the audit trail; the
    admin shows them but cannot edit them behind the trail's back."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ["name", "whatsapp", "source", "status", "converted", "created_at"]
    list_filter = ["status", "source", "converted"]
    search_fields = ["name", "email", "whatsapp"]
