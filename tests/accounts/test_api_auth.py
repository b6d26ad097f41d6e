import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiToken
from audit.models import AuditLog

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "teacher", "marketing", "founder"]


@pytest.mark.parametrize(
    ("persona_client", "expected"),
    [("anonymous", 401), ("teacher", 200), ("marketing", 200), ("founder", 200)],
    indirect=["persona_client"],
)
def test_me_role_matrix(persona_client, expected):
    assert persona_client.get("/api/me").status_code == expected


def test_anonymous_api_call_is_401_with_the_error_body():
    response = Client().get("/api/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "error": "Authentication credentials were not provided.",
        "code": "not_authenticated",
        "details": {},
    }


def test_unknown_token_is_401():
    response = Client(HTTP_AUTHORIZATION="Bearer pb_not-a-real-token").get("/api/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_token_auth_identifies_the_user(founder_client, founder):
    assert founder_client.get("/api/me").json() == {
        "id": founder.pk,
        "email": founder.email,
        "name": founder.name,
        "role": "FOUNDER",
    }


def test_token_of_an_inactive_user_is_refused(founder, founder_client):
    founder.is_active = False
    founder.save()
    assert founder_client.get("/api/me").status_code == 401


def test_session_auth_works_for_reads_and_enforces_csrf_on_writes(founder):
    client = Client(enforce_csrf_checks=True)
    client.force_login(founder)
    assert client.get("/api/me").status_code == 200
    response = client.post("/api/me", data={}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_issue_token_prints_the_token_last_and_stores_only_its_hash(founder, capsys):
    call_command("issue_token", founder.email, "--name", "uptime")
    raw = capsys.readouterr().out.strip().splitlines()[-1]

    token = ApiToken.objects.get()
    assert raw.startswith("pb_") and len(raw) > 40
    assert raw not in str(ApiToken.objects.values().get())
    assert token.prefix == raw[:10]
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/me").status_code == 200
    row = AuditLog.objects.get(action="API_TOKEN_ISSUED")
    assert raw not in str(row.metadata) and raw not in row.description


def test_revoked_token_is_401(founder, capsys):
    call_command("issue_token", founder.email)
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    call_command("revoke_token", raw[:10])

    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/me").status_code == 401
    assert AuditLog.objects.filter(action="API_TOKEN_REVOKED").count() == 1


def test_issue_token_for_unknown_user_fails_and_writes_nothing():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("issue_token", "ghost@example.com")
    assert ApiToken.objects.count() == 0


def test_create_user_command_creates_a_user_that_can_log_in(capsys):
    from accounts.models import User

    call_command(
        "create_user",
        "new@example.com",
        "--name",
        "New Person",
        "--role",
        "MARKETING",
        "--password",
        "a-long-enough-passphrase",
    )
    user = User.objects.get(email="new@example.com")
    assert (user.name, user.role, user.check_password("a-long-enough-passphrase")) == (
        "New Person",
        "MARKETING",
        True,
    )
    assert AuditLog.objects.get().action == "USER_CREATED"


def test_create_user_refuses_a_weak_password_and_writes_nothing():
    from django.core.management.base import CommandError

    from accounts.models import User

    with pytest.raises(CommandError):
        call_command(
            "create_user",
            "weak@example.com",
            "--name",
            "W",
            "--role",
            "TEACHER",
            "--password",
            "123",
        )
    assert User.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_create_user_via_manager_works_as_in_django():
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        "x@example.com", "pw-123456789", name="X", role="TEACHER"
    )
    assert user.check_password("pw-123456789") and user.role == "TEACHER" and not user.is_staff
