from django.contrib import admin

from leads.models import Lead
from planbeta.admin import ReadOnlyAdmin


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ["name", "whatsapp", "source", "status", "converted", "created_at"]
    list_filter = ["status", "source", "converted"]
    search_fields = ["name", "email", "whatsapp"]
