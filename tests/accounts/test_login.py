from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.services import lockout_clear
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


def test_logout_and_login_rows_name_the_user_as_their_entity(anon_client, founder):
    # The logout view hands the audit the request's user, a lazy stand-in for the User.
    _login(anon_client, founder.email, PASSWORD)
    anon_client.post("/accounts/logout/")

    rows = AuditLog.objects.order_by("id").values_list("action", "entity_type", "entity_id")
    assert list(rows) == [("LOGIN", "User", str(founder.pk)), ("LOGOUT", "User", str(founder.pk))]


def test_logout_by_get_is_refused(founder):
    client = Client()
    client.force_login(founder)
    assert client.get("/accounts/logout/").status_code == 405


def test_login_form_enforces_csrf(founder):
    client = Client(enforce_csrf_checks=True)
    assert _login(client, founder.email, PASSWORD).status_code == 403
    assert AuditLog.objects.count() == 0


OFFICE = "203.0.113.10"  # everyone in the office reaches us from this one address
STRANGER = "198.51.100.66"


def _fail(email, address, times):
    for _ in range(times):
        assert _login(Client(), email, "wrong", REMOTE_ADDR=address).status_code in (400, 429)


def test_five_failures_lock_that_person_at_that_address_even_with_the_right_password(founder):
    _fail(founder.email, OFFICE, 5)

    response = _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=OFFICE)

    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert AuditLog.objects.filter(action="LOGIN").count() == 0
    assert AuditLog.objects.filter(action="LOGIN_FAILED", metadata__reason="locked_out").exists()


def test_a_colleague_behind_the_same_office_address_still_logs_in(founder, marketing):
    _fail(marketing.email, OFFICE, 5)
    assert _login(Client(), marketing.email, PASSWORD, REMOTE_ADDR=OFFICE).status_code == 429

    response = _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=OFFICE)

    assert response.status_code == 302
    assert AuditLog.objects.filter(action="LOGIN", user_email=founder.email).count() == 1


def test_a_stranger_elsewhere_cannot_lock_a_founder_out(founder):
    _fail(founder.email, STRANGER, 20)
    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=STRANGER).status_code == 429

    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=OFFICE).status_code == 302


def test_an_address_spraying_many_accounts_is_stopped_at_the_generous_address_limit(
    founder, settings
):
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT == 50
    # A bad morning at the office: ten people each mistype four times. Nobody is locked.
    for i in range(10):
        _fail(f"colleague{i}@example.com", OFFICE, 4)
    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=OFFICE).status_code == 302

    # Spraying: one guess at each of many accounts, until the address has 50 failures.
    for i in range(10):
        _fail(f"target{i}@example.com", STRANGER, 5)
    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=STRANGER).status_code == 429
    assert _login(Client(), founder.email, PASSWORD, REMOTE_ADDR=OFFICE).status_code == 302


def _lock(user, address):
    _fail(user.email, address, 5)
    assert _login(Client(), user.email, PASSWORD, REMOTE_ADDR=address).status_code == 429


def _founder_admin(founder):
    admin = Client(REMOTE_ADDR="192.0.2.1")
    admin.force_login(founder)
    return admin


def test_a_founder_can_lift_a_lockout_in_the_admin_and_it_is_audited(founder, marketing):
    _lock(marketing, OFFICE)
    admin = _founder_admin(founder)
    attempt = AccessAttempt.objects.get(username=marketing.email)

    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "lift_lockout", "_selected_action": [attempt.pk]},
    )

    assert response.status_code == 302
    assert AccessAttempt.objects.count() == 0
    row = AuditLog.objects.get(action="LOCKOUT_CLEARED")
    assert (row.severity, row.user_email, row.ip_address) == ("INFO", founder.email, "192.0.2.1")
    assert (row.entity_type, row.entity_id) == ("User", str(marketing.pk))
    assert row.description == f"Login lockout lifted for {marketing.email} from {OFFICE}"
    assert row.metadata == {"emailTried": marketing.email, "address": OFFICE, "failures": 6}
    assert _login(Client(), marketing.email, PASSWORD, REMOTE_ADDR=OFFICE).status_code == 302


def test_deleting_attempts_in_the_admin_lifts_them_through_the_audited_path(founder, marketing):
    _lock(marketing, OFFICE)
    _fail("nobody@example.com", STRANGER, 2)
    admin = _founder_admin(founder)
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))

    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )

    assert response.status_code == 302
    assert AccessAttempt.objects.count() == 0
    lifted = AuditLog.objects.filter(action="LOCKOUT_CLEARED")
    assert sorted(lifted.values_list("metadata__emailTried", "entity_id")) == [
        (marketing.email, str(marketing.pk)),
        ("nobody@example.com", ""),
    ]

    _lock(marketing, OFFICE)
    attempt = AccessAttempt.objects.get()
    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert AccessAttempt.objects.count() == 0
    assert lifted.count() == 3


def test_lifting_a_lockout_from_the_shell_is_audited(founder, marketing):
    _lock(marketing, OFFICE)
    _fail(marketing.email, STRANGER, 1)
    out = StringIO()

    call_command("lift_lockout", marketing.email.upper(), "--address", OFFICE, stdout=out)

    assert out.getvalue() == "Lifted 1 lockout(s).\n"
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [STRANGER]
    row = AuditLog.objects.get(action="LOCKOUT_CLEARED")
    assert (row.source, row.metadata["address"]) == ("COMMAND", OFFICE)
    with pytest.raises(CommandError):
        call_command("lift_lockout", "nobody@example.com")


def test_a_password_typed_as_the_username_is_not_written_down_when_its_lock_is_lifted(founder):
    # The login form refuses what is not an e-mail address before axes counts it; a row of
    # axes' own table can still hold anything.
    attempt = AccessAttempt.objects.create(
        username="hunter2-secret", ip_address=OFFICE, user_agent="", failures_since_start=5
    )

    lockout_clear(attempts=AccessAttempt.objects.filter(pk=attempt.pk), actor=founder)

    row = AuditLog.objects.get(action="LOCKOUT_CLEARED")
    assert row.metadata["emailTried"] == "[not an e-mail address]"
    assert "hunter2" not in str(AuditLog.objects.values().get(action="LOCKOUT_CLEARED")).lower()


def test_teachers_and_marketing_cannot_lift_a_lockout(marketing, teacher):
    _lock(marketing, OFFICE)
    attempt = AccessAttempt.objects.get()
    for user in (marketing, teacher):
        client = Client()
        client.force_login(user)
        response = client.post(
            "/admin/axes/accessattempt/",
            {"action": "lift_lockout", "_selected_action": [attempt.pk]},
        )
        assert response.status_code in (302, 403)
        assert AccessAttempt.objects.count() == 1
    assert not AuditLog.objects.filter(action="LOCKOUT_CLEARED").exists()


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
