from django.contrib import admin

from audit.models import AuditLog
from core.admin import ReadOnlyAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "severity", "action", "description", "user_email", "ip_address"]
    list_filter = ["severity", "source"]
    search_fields = ["=request_id", "=entity_id", "user_email"]
    date_hierarchy = None
    show_full_result_count = False
    list_per_page = 50
