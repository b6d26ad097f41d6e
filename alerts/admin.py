from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from alerts import acks, delivery, services, suppression
from alerts.models import AlertState, MaintenanceMute, Notification, NotificationStatus, Silence
from alerts.rules import RULES


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
    list_display = [
        "fingerprint",
        "state",
        "summary",
        "firing_since",
        "last_notified_at",
        "acknowledged_by",
        "acknowledged_at",
        "escalated_at",
    ]
    list_filter = ["state", "rule"]
    list_select_related = ["acknowledged_by"]
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset):
        # For a founder whose link expired: the same service as the link, at the present version.
        done = [
            acks.alert_acknowledge(
                fingerprint=state.fingerprint, version=state.version, actor=request.user
            ).acknowledged
            for state in queryset
        ]
        self.message_user(request, f"{sum(done)} alerts acknowledged.", messages.SUCCESS)


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


def _rule_choices() -> list[tuple[str, str]]:
    names = [rule.name for rule in RULES] + [services.CRITICAL_RULE, services.DIGEST_RULE]
    return [(name, name) for name in names]


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    fields = ["rule", "fingerprint", "starts_at", "ends_at", "reason"]
    list_display = ["rule", "fingerprint", "starts_at", "ends_at", "reason", "created_by"]
    list_filter = ["rule"]
    list_select_related = ["created_by"]
    actions = ["end_now"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # ended, not deleted: who silenced what, why and until when stays on record

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "rule":
            # The rules live in code, not in the database: a choice of the present ones.
            return forms.ChoiceField(choices=_rule_choices, label="Rule")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.action(description="End the selected silences now")
    def end_now(self, request, queryset):
        ended = [
            suppression.silence_end(silence=silence, actor=request.user) for silence in queryset
        ]
        self.message_user(request, f"{sum(ended)} silences ended.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        silence = suppression.silence_create(
            actor=request.user,
            rule=obj.rule,
            fingerprint=obj.fingerprint,
            starts_at=obj.starts_at,
            ends_at=obj.ends_at,
            reason=obj.reason,
        )
        obj.pk = silence.pk
