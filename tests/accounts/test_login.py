import pytest
from axes.models import AccessAttempt
from django.test import Client

from audit.models import AuditLog
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client, email, password, **extra):
    return client.post("/accounts/login/", {"email": email, "password": password}, **extra)


def test_login_page_is_the_login_url(settings, anon_client):
    from django.urls import reverse

    assert reverse(settings.LOGIN_URL) == "/accounts/login/"
    assert anon_client.get("/accounts/login/").status_code == 200


def test_successful_login_starts_a_session_and_is_audited(anon_client, founder):
    response = _login(anon_client, "Founder@Example.com", PASSWORD, REMOTE_ADDR="203.0.113.1")

    assert response.status_code == 302
    assert anon_client.get("/").status_code == 200
    row = AuditLog.objects.get()
    assert (row.action, row.severity, row.user_email, row.ip_address) == (
        "LOGIN",
        "INFO",
        "founder@example.com",
        "203.0.113.1",
    )


def test_login_accepts_the_username_field_too(anon_client, founder):
    response = anon_client.post(
        "/accounts/login/", {"username": founder.email, "password": PASSWORD}
    )
    assert response.status_code == 302


def test_failed_login_records_the_email_tried_and_never_the_password(anon_client, founder):
    response = _login(anon_client, "founder@example.com", "wrong-password-42")

    assert response.status_code == 400
    assert b"do not match" in response.content
    row = AuditLog.objects.get()
    assert (row.action, row.severity, row.user_id) == ("LOGIN_FAILED", "WARNING", None)
    assert row.metadata == {"emailTried": "founder@example.com", "reason": "bad_credentials"}
    assert "wrong-password-42" not in str(AuditLog.objects.values().get())


def test_inactive_user_cannot_log_in(anon_client, founder):
    founder.is_active = False
    founder.save()
    assert _login(anon_client, founder.email, PASSWORD).status_code == 400


def test_logout_ends_the_session_and_is_audited(founder):
    client = Client()
    client.force_login(founder)
    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the login page
    assert AuditLog.objects.get().action == "LOGOUT"


def test_logout_by_get_is_refused(founder):
    client = Client()
    client.force_login(founder)
    assert client.get("/accounts/logout/").status_code == 405


def test_login_form_enforces_csrf(founder):
    client = Client(enforce_csrf_checks=True)
    assert _login(client, founder.email, PASSWORD).status_code == 403
    assert AuditLog.objects.count() == 0


def test_account_is_locked_after_five_failures_even_with_the_right_password(founder):
    for i in range(5):
        _login(Client(), founder.email, "wrong", REMOTE_ADDR=f"203.0.113.{i + 1}")

    response = _login(Client(), founder.email, PASSWORD, REMOTE_ADDR="198.51.100.99")

    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert AuditLog.objects.filter(action="LOGIN").count() == 0
    assert AuditLog.objects.filter(action="LOGIN_FAILED", metadata__reason="locked_out").exists()


def test_an_address_is_locked_after_five_failures_across_accounts(founder, marketing):
    for i in range(5):
        _login(Client(), f"nobody{i}@example.com", "wrong", REMOTE_ADDR="203.0.113.50")

    response = _login(Client(), marketing.email, PASSWORD, REMOTE_ADDR="203.0.113.50")
    assert response.status_code == 429
    assert (
        _login(Client(), marketing.email, PASSWORD, REMOTE_ADDR="203.0.113.51").status_code == 302
    )


def test_a_founder_can_lift_a_lockout_in_the_admin(founder, marketing):
    for _ in range(5):
        _login(Client(), marketing.email, "wrong", REMOTE_ADDR="203.0.113.60")
    assert (
        _login(Client(), marketing.email, PASSWORD, REMOTE_ADDR="203.0.113.61").status_code == 429
    )

    admin = Client()
    admin.force_login(founder)
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert AccessAttempt.objects.count() == 0
    assert (
        _login(Client(), marketing.email, PASSWORD, REMOTE_ADDR="203.0.113.61").status_code == 302
    )


def test_a_successful_login_resets_the_failure_count(founder):
    for _ in range(4):
        _login(Client(), founder.email, "wrong", REMOTE_ADDR="203.0.113.70")
    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR="203.0.113.70").status_code == 302
    for _ in range(4):
        _login(Client(), founder.email, "wrong", REMOTE_ADDR="203.0.113.70")
    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR="203.0.113.70").status_code == 302


def test_the_admin_login_goes_through_our_login_page(anon_client):
    response = anon_client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_password_typed_into_the_email_box_is_not_written_down(anon_client, founder):
    response = anon_client.post(
        "/accounts/login/", {"email": "MySecretP@ss w0rd!", "password": "whatever"}
    )

    assert response.status_code == 400
    row = AuditLog.objects.get()
    assert row.metadata == {"emailTried": "[not an e-mail address]", "reason": "invalid_form"}
    assert "mysecretp" not in str(AuditLog.objects.values().get()).lower()
