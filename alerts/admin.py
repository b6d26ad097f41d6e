from django.contrib import admin, messages
from django.http import HttpRequest

from alerts import delivery, services
from alerts.models import AlertState, MaintenanceMute, Notification, NotificationStatus


class _ReadOnly(admin.ModelAdmin):
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(_ReadOnly):
    list_display = [
        "created_at",
        "status",
        "kind",
        "rule",
        "channel",
        "target_label",
        "attempts",
        "sent_at",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status", "channel", "kind", "rule"]
    search_fields = ["=fingerprint", "title"]
    show_full_result_count = False
    list_per_page = 50
    actions = ["retry_now"]

    @admin.action(description="Retry the selected failed deliveries now")
    def retry_now(self, request, queryset):
        ids = list(queryset.filter(status=NotificationStatus.FAILED).values_list("id", flat=True))
        count = delivery.retry_failed(ids=ids, actor=request.user)
        self.message_user(request, f"{count} notifications queued again.", messages.SUCCESS)


@admin.register(AlertState)
class AlertStateAdmin(_ReadOnly):
    list_display = ["fingerprint", "state", "summary", "firing_since", "last_notified_at"]
    list_filter = ["state", "rule"]


@admin.register(MaintenanceMute)
class MaintenanceMuteAdmin(admin.ModelAdmin):
    list_display = ["starts_at", "ends_at", "reason", "created_by"]
    fields = ["starts_at", "ends_at", "reason"]

    actions = ["end_now"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # ended, not deleted: the record of who muted what stays

    @admin.action(description="End the selected mutes now")
    def end_now(self, request, queryset):
        ended = [services.mute_end(mute=mute, actor=request.user) for mute in queryset]
        self.message_user(request, f"{sum(ended)} mutes ended.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        # A mute is written by its service, which audits who silenced the alerts and until when.
        mute = services.mute_create(
            actor=request.user, starts_at=obj.starts_at, ends_at=obj.ends_at, reason=obj.reason
        )
        obj.pk = mute.pk
