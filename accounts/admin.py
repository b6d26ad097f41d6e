"""Lifting a login lockout in the admin goes through the service that writes the audit trail."""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
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
