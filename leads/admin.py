from django.contrib import admin

from core.admin import ReadOnlyAdmin
from leads.models import Lead


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ["name", "whatsapp", "source", "status", "converted", "created_at"]
    list_filter = ["status", "source", "converted"]
    search_fields = ["name", "email", "whatsapp"]
