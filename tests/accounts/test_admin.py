import pytest
from django.test import Client

from audit.models import AuditLog
from audit.services import AuditEntry, audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(founder):
    client = Client()
    client.force_login(founder)
    return client


def test_founder_sees_audit_rows_in_the_admin(admin_client_):
    row = audit_record(AuditEntry("LEAD_CREATED", description="a lead"))
    assert admin_client_.get("/admin/audit/auditlog/").status_code == 200
    response = admin_client_.get(f"/admin/audit/auditlog/{row.pk}/change/")
    assert response.status_code == 200
    assert b'name="_save"' not in response.content


def test_audit_rows_cannot_be_changed_or_deleted_in_the_admin(admin_client_):
    row = audit_record(AuditEntry("LEAD_CREATED", description="a lead"))
    assert (
        admin_client_.post(
            f"/admin/audit/auditlog/{row.pk}/change/", {"description": "x"}
        ).status_code
        == 403
    )
    assert (
        admin_client_.post(f"/admin/audit/auditlog/{row.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert admin_client_.get("/admin/audit/auditlog/add/").status_code == 403
    assert AuditLog.objects.get().description == "a lead"


@pytest.mark.parametrize("persona", ["marketing", "teacher"])
def test_staff_who_are_not_founders_cannot_use_the_admin(request, persona):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/admin/audit/auditlog/").status_code in (302, 403)
    assert client.get("/admin/login/").status_code == 403


def test_anonymous_admin_is_sent_to_login():
    response = Client().get("/admin/")
    assert response.status_code == 302


# Admins through which a founder can change rows, each audited: batches (payments.batches), mutes
# and silences (created by their services), notifications and alert states (every field read-only;
# their actions go through audited services), lockouts (lifted through lockout_clear).
AUDITED_ADMINS = {
    "payments.Batch",
    "alerts.MaintenanceMute",
    "alerts.Silence",
    "alerts.Notification",
    "alerts.AlertState",
    "axes.AccessAttempt",
}


def test_every_admin_that_can_change_rows_is_an_audited_one(rf, founder):
    from django.contrib import admin

    request = rf.get("/admin/")
    request.user = founder
    changeable = {
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if model_admin.has_add_permission(request)
        or model_admin.has_change_permission(request)
        or model_admin.has_delete_permission(request)
    }
    assert changeable <= AUDITED_ADMINS
    assert "auth.Group" not in {model._meta.label for model in admin.site._registry}


def test_axes_login_logs_are_read_only(admin_client_):
    from axes.models import AccessLog

    log = AccessLog.objects.create(username="x@example.com", ip_address="10.0.0.1", user_agent="")
    assert admin_client_.get("/admin/axes/accesslog/").status_code == 200
    response = admin_client_.post(f"/admin/axes/accesslog/{log.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert AccessLog.objects.filter(pk=log.pk).exists()
