"""Lifting a login lockout in the admin goes through the service that writes the audit trail.

Nothing else of accounts changes in the admin: users are managed on the users pages (which audit
every change), axes' login logs are shown read-only (the trail's LOGIN and LOGIN_FAILED rows are
the record), and Django's groups, which roles do not use, are not offered at all.
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.admin import AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.services import lockout_clear


class AccessAttemptAdmin(AxesAccessAttemptAdmin):
    # axes' own page, except that every way of deleting rows here (this action, "Delete selected",
    # the delete button of one row) lifts the lockout through lockout_clear and is audited.
    actions = ["lift_lockout", *AxesAccessAttemptAdmin.actions]

    @admin.action(description="Lift the lockout of the selected attempts")
    def lift_lockout(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        lifted = lockout_clear(attempts=queryset, actor=request.user)
        self.message_user(request, f"Lifted {lifted} lockout(s).")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        lockout_clear(attempts=queryset, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        lockout_clear(attempts=AccessAttempt.objects.filter(pk=obj.pk), actor=request.user)


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, AccessAttemptAdmin)


class _ReadOnlyLog:
    # axes' pages, without the change and delete that would rewrite the login history unaudited.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAccessLogAdmin(_ReadOnlyLog, AccessLogAdmin):
    pass


class ReadOnlyAccessFailureLogAdmin(_ReadOnlyLog, AccessFailureLogAdmin):
    pass


admin.site.unregister(AccessLog)
admin.site.register(AccessLog, ReadOnlyAccessLogAdmin)
admin.site.unregister(AccessFailureLog)
admin.site.register(AccessFailureLog, ReadOnlyAccessFailureLogAdmin)
admin.site.unregister(Group)
