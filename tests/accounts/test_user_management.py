"""Founders manage users on the web: create, change name and role, deactivate and reactivate,
reset a password, issue and revoke API tokens; each change audited, each secret shown once."""

import re

import pytest
from django.test import Client

from accounts.models import ApiToken, Role, User
from accounts.services import user_set_active, user_update
from audit.models import AuditLog
from core.errors import ConflictError
from tests.concurrency import run_concurrently
from tests.conftest import PASSWORD
from tests.factories import make_token, make_user

pytestmark = pytest.mark.django_db

STRONG = "plum-orchard-lantern-42"


@pytest.fixture
def web(founder):
    client = Client()
    client.force_login(founder)
    return client


def _once(client, path):
    """The one-time key a rendered form carries (the first, where a page has several)."""
    html = client.get(path).content.decode()
    return re.findall(r'name="once" value="([^"]+)"', html)


def _secret(response):
    return re.search(r'<code class="secret" id="secret">([^<]+)</code>', response.content.decode())


def _logs_in(email, password):
    """Through the login page, as a person would (Client.login skips the lockout backend)."""
    response = Client().post("/accounts/login/", {"email": email, "password": password})
    return response.status_code == 302


def _rows(action):
    return list(AuditLog.objects.filter(action=action))


# --- who may ----------------------------------------------------------------------------------

GETS = ["/accounts/users/", "/accounts/users/new/", "/accounts/users/{target}/"]
POSTS = [
    "/accounts/users/new/",
    "/accounts/users/{target}/edit/",
    "/accounts/users/{target}/deactivate/",
    "/accounts/users/{target}/reactivate/",
    "/accounts/users/{target}/password/",
    "/accounts/users/{target}/tokens/",
    "/accounts/users/{target}/tokens/{token}/revoke/",
]


@pytest.mark.parametrize("who", ["anonymous", "teacher", "marketing", "founder"])
def test_user_pages_role_matrix(request, who):
    target = make_user(email="target@example.com", name="Target", role=Role.MARKETING)
    make_token(target)
    token = ApiToken.objects.get(user=target)
    before = AuditLog.objects.count()
    client = Client()
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    ids = {"target": target.pk, "token": token.pk}

    for path in GETS:
        response = client.get(path.format(**ids))
        if who == "anonymous":
            assert response.status_code == 302, path
            assert response["Location"].startswith("/accounts/login/?next=/accounts/users/")
        elif who == "founder":
            assert response.status_code == 200, path
        else:
            assert response.status_code == 403, path
    if who != "founder":
        form = {"name": "Changed", "role": "FOUNDER", "email": "new@example.com"}
        for path in POSTS:
            response = client.post(path.format(**ids), form)
            assert response.status_code == (302 if who == "anonymous" else 403), path
        target.refresh_from_db()
        token.refresh_from_db()
        assert (target.name, target.role, target.is_active) == ("Target", "MARKETING", True)
        assert token.is_active
        assert not User.objects.filter(email="new@example.com").exists()
        assert ApiToken.objects.count() == 1
        assert AuditLog.objects.count() == before


# --- create -----------------------------------------------------------------------------------


def test_a_founder_creates_a_user_and_sees_the_generated_password_once(web, founder):
    once = _once(web, "/accounts/users/new/")[0]

    response = web.post(
        "/accounts/users/new/",
        {
            "email": "Anna@PlanBeta.example",
            "name": "Anna K",
            "role": "MARKETING",
            "password_choice": "generate",
            "once": once,
        },
    )

    password = _secret(response).group(1)
    user = User.objects.get(email="anna@planbeta.example")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert (user.name, user.role, user.is_active) == ("Anna K", "MARKETING", True)
    assert len(password) == 16 and _logs_in("anna@planbeta.example", password)
    row = AuditLog.objects.get(action="USER_CREATED")
    assert (row.user_id, row.entity_id) == (founder.pk, str(user.pk))
    assert password not in str(row.metadata) + row.description
    assert password not in web.get(f"/accounts/users/{user.pk}/").content.decode()


def test_a_founder_can_set_the_first_password_and_it_must_be_strong(web):
    form = {
        "email": "anna@planbeta.example",
        "name": "Anna K",
        "role": "TEACHER",
        "password_choice": "choose",
        "password1": "password",
        "password2": "password",
    }

    weak = web.post("/accounts/users/new/", {**form, "once": _once(web, "/accounts/users/new/")[0]})
    assert weak.status_code == 400
    assert "This password is too common." in weak.content.decode()
    assert not User.objects.filter(email="anna@planbeta.example").exists()

    strong = web.post(
        "/accounts/users/new/",
        {
            **form,
            "password1": STRONG,
            "password2": STRONG,
            "once": re.search(r'name="once" value="([^"]+)"', weak.content.decode()).group(1),
        },
    )
    user = User.objects.get(email="anna@planbeta.example")
    assert (strong.status_code, strong["Location"]) == (302, f"/accounts/users/{user.pk}/")
    assert _logs_in("anna@planbeta.example", STRONG)


def test_creating_a_user_whose_email_exists_explains_it_and_creates_nothing(web, marketing):
    response = web.post(
        "/accounts/users/new/",
        {
            "email": "MARKETING@example.com",
            "name": "Twin",
            "role": "FOUNDER",
            "password_choice": "generate",
            "once": _once(web, "/accounts/users/new/")[0],
        },
    )

    assert response.status_code == 400
    assert "A user with this e-mail address already exists." in response.content.decode()
    assert User.objects.filter(email__iexact="marketing@example.com").count() == 1
    assert not _rows("USER_CREATED")


def test_the_create_form_sent_twice_creates_one_user(web):
    form = {
        "email": "anna@planbeta.example",
        "name": "Anna K",
        "role": "MARKETING",
        "password_choice": "generate",
        "once": _once(web, "/accounts/users/new/")[0],
    }

    first = web.post("/accounts/users/new/", form)
    second = web.post("/accounts/users/new/", form)

    assert first.status_code == 200 and _secret(first)
    assert (second.status_code, second["Location"]) == (302, "/accounts/users/")
    assert "already sent" in web.get("/accounts/users/").content.decode()
    assert User.objects.filter(email="anna@planbeta.example").count() == 1
    assert len(_rows("USER_CREATED")) == 1


# --- name and role ----------------------------------------------------------------------------


def test_changing_the_role_is_audited_with_before_and_after(web, marketing):
    response = web.post(
        f"/accounts/users/{marketing.pk}/edit/", {"name": "Manu M", "role": "TEACHER"}
    )

    marketing.refresh_from_db()
    assert response.status_code == 302
    assert (marketing.name, marketing.role) == ("Manu M", "TEACHER")
    row = AuditLog.objects.get(action="USER_UPDATED")
    assert row.metadata["changes"] == {
        "name": {"before": "Manu Marketing", "after": "Manu M"},
        "role": {"before": "MARKETING", "after": "TEACHER"},
    }
    assert row.entity_id == str(marketing.pk)


def test_saving_the_same_name_and_role_writes_no_row(web, marketing):
    web.post(f"/accounts/users/{marketing.pk}/edit/", {"name": marketing.name, "role": "MARKETING"})

    assert not _rows("USER_UPDATED")


def test_an_unknown_role_is_refused_and_changes_nothing(web, marketing):
    response = web.post(f"/accounts/users/{marketing.pk}/edit/", {"name": "X", "role": "ADMIN"})

    marketing.refresh_from_db()
    assert response.status_code == 400
    assert (marketing.name, marketing.role) == ("Manu Marketing", "MARKETING")
    assert not _rows("USER_UPDATED")


def test_the_last_active_founder_cannot_demote_themselves(web, founder):
    make_user(role=Role.FOUNDER, name="Retired Founder", is_active=False)

    response = web.post(f"/accounts/users/{founder.pk}/edit/", {"name": "F", "role": "MARKETING"})

    founder.refresh_from_db()
    assert response.status_code == 409
    assert "This would leave no active founder" in response.content.decode()
    assert (founder.name, founder.role) == ("Fiona Founder", "FOUNDER")
    assert not _rows("USER_UPDATED")


def test_a_founder_may_step_down_while_another_founder_remains(web, founder):
    make_user(role=Role.FOUNDER, name="Ravi Founder")

    web.post(f"/accounts/users/{founder.pk}/edit/", {"name": founder.name, "role": "MARKETING"})

    founder.refresh_from_db()
    assert founder.role == "MARKETING"
    assert web.get("/accounts/users/").status_code == 403  # no longer a founder's page for them


# --- deactivate and reactivate ----------------------------------------------------------------


def test_deactivating_a_user_ends_their_sessions_and_tokens(web, marketing):
    their_browser = Client()
    their_browser.force_login(marketing)
    raw = make_token(marketing)

    response = web.post(f"/accounts/users/{marketing.pk}/deactivate/")

    marketing.refresh_from_db()
    assert response.status_code == 302 and not marketing.is_active
    assert their_browser.get("/leads/").status_code == 302  # to the login page
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/me").status_code == 401
    assert not _logs_in(marketing.email, PASSWORD)
    row = AuditLog.objects.get(action="USER_DEACTIVATED")
    assert row.metadata["changes"] == {"isActive": {"before": True, "after": False}}


def test_reactivating_lets_them_log_in_again(web, marketing):
    web.post(f"/accounts/users/{marketing.pk}/deactivate/")

    web.post(f"/accounts/users/{marketing.pk}/reactivate/")

    assert _logs_in(marketing.email, PASSWORD)
    row = AuditLog.objects.get(action="USER_REACTIVATED")
    assert row.metadata["changes"] == {"isActive": {"before": False, "after": True}}


def test_deactivating_twice_writes_one_row(web, marketing):
    web.post(f"/accounts/users/{marketing.pk}/deactivate/")
    web.post(f"/accounts/users/{marketing.pk}/deactivate/")

    assert len(_rows("USER_DEACTIVATED")) == 1


def test_the_last_active_founder_cannot_deactivate_themselves(web, founder):
    response = web.post(f"/accounts/users/{founder.pk}/deactivate/", follow=True)

    founder.refresh_from_db()
    assert founder.is_active
    assert "This would leave no active founder" in response.content.decode()
    assert not _rows("USER_DEACTIVATED")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_founders_demoting_each_other_at_once_leave_one_founder():
    anna = make_user(email="anna@example.com", role=Role.FOUNDER, name="Anna")
    ravi = make_user(email="ravi@example.com", role=Role.FOUNDER, name="Ravi")

    results = run_concurrently(
        [
            lambda: user_update(user=anna, actor=ravi, name="Anna", role=Role.MARKETING),
            lambda: user_set_active(user=ravi, actor=anna, active=False),
        ]
    )

    refused = [r for r in results if isinstance(r, ConflictError)]
    assert len(refused) == 1, results
    assert User.objects.filter(role=Role.FOUNDER, is_active=True).count() == 1
    assert AuditLog.objects.filter(action__in=["USER_UPDATED", "USER_DEACTIVATED"]).count() == 1


# --- passwords --------------------------------------------------------------------------------


def test_a_founder_resets_a_password_and_sees_the_new_one_once(web, marketing):
    their_browser = Client()
    their_browser.force_login(marketing)
    once = _once(web, f"/accounts/users/{marketing.pk}/")[0]

    response = web.post(
        f"/accounts/users/{marketing.pk}/password/",
        {"password_choice": "generate", "once": once},
    )

    password = _secret(response).group(1)
    assert "no-store" in response["Cache-Control"]
    assert _logs_in(marketing.email, password)
    assert not _logs_in(marketing.email, PASSWORD)
    assert their_browser.get("/leads/").status_code == 302  # their session ended
    row = AuditLog.objects.get(action="USER_PASSWORD_RESET")
    assert password not in str(row.metadata) + row.description


def test_a_reset_form_sent_twice_resets_once(web, marketing):
    form = {
        "password_choice": "generate",
        "once": _once(web, f"/accounts/users/{marketing.pk}/")[0],
    }

    first = web.post(f"/accounts/users/{marketing.pk}/password/", form)
    second = web.post(f"/accounts/users/{marketing.pk}/password/", form)

    assert _logs_in(marketing.email, _secret(first).group(1))
    assert second.status_code == 302
    assert len(_rows("USER_PASSWORD_RESET")) == 1


def test_a_weak_chosen_password_is_refused_and_the_old_one_still_works(web, marketing):
    response = web.post(
        f"/accounts/users/{marketing.pk}/password/",
        {
            "password_choice": "choose",
            "password1": "manu marketing",
            "password2": "manu marketing",
            "once": _once(web, f"/accounts/users/{marketing.pk}/")[0],
        },
    )

    assert response.status_code == 400
    assert "The password is too similar to the" in response.content.decode()
    assert _logs_in(marketing.email, PASSWORD)
    assert not _rows("USER_PASSWORD_RESET")


@pytest.mark.parametrize("who", ["teacher", "marketing", "founder"])
def test_everyone_changes_their_own_password_and_stays_logged_in(request, who):
    user = request.getfixturevalue(who)
    client = Client()
    client.force_login(user)

    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": STRONG, "new_password2": STRONG},
    )

    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.get("/").status_code == 200
    assert _logs_in(user.email, STRONG)
    row = AuditLog.objects.get(action="USER_PASSWORD_CHANGED")
    assert (row.user_id, row.entity_id) == (user.pk, str(user.pk))


def test_changing_ones_password_needs_the_old_one(teacher):
    client = Client()
    client.force_login(teacher)

    response = client.post(
        "/accounts/password/",
        {"old_password": "wrong", "new_password1": STRONG, "new_password2": STRONG},
    )

    assert response.status_code == 400
    assert _logs_in(teacher.email, PASSWORD)
    assert not _rows("USER_PASSWORD_CHANGED")


def test_anonymous_visitors_of_the_password_page_are_sent_to_login():
    response = Client().get("/accounts/password/")

    assert response["Location"] == "/accounts/login/?next=/accounts/password/"


# --- API tokens -------------------------------------------------------------------------------


def test_a_founder_issues_a_token_that_is_shown_once_and_works(web, marketing):
    once = _once(web, f"/accounts/users/{marketing.pk}/")[1]

    response = web.post(
        f"/accounts/users/{marketing.pk}/tokens/", {"name": "sheet sync", "once": once}
    )

    raw = _secret(response).group(1)
    token = ApiToken.objects.get(user=marketing)
    assert "no-store" in response["Cache-Control"]
    assert raw.startswith("pb_") and token.prefix == raw[:10] and token.name == "sheet sync"
    me = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/me")
    assert me.json()["email"] == marketing.email
    page = web.get(f"/accounts/users/{marketing.pk}/").content.decode()
    assert raw not in page and f"<code>{token.prefix}…</code>" in page
    row = AuditLog.objects.get(action="API_TOKEN_ISSUED")
    assert raw not in str(row.metadata) + row.description


def test_a_token_form_sent_twice_issues_one_token(web, marketing):
    form = {"name": "sheet sync", "once": _once(web, f"/accounts/users/{marketing.pk}/")[1]}

    web.post(f"/accounts/users/{marketing.pk}/tokens/", form)
    second = web.post(f"/accounts/users/{marketing.pk}/tokens/", form)

    assert second.status_code == 302
    assert ApiToken.objects.filter(user=marketing).count() == 1


def test_a_token_needs_a_name(web, marketing):
    response = web.post(
        f"/accounts/users/{marketing.pk}/tokens/",
        {"name": "", "once": _once(web, f"/accounts/users/{marketing.pk}/")[1]},
    )

    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_a_token_makes_it_401_and_is_audited(web, marketing):
    raw = make_token(marketing)
    token = ApiToken.objects.get(user=marketing)

    response = web.post(f"/accounts/users/{marketing.pk}/tokens/{token.pk}/revoke/")

    assert response.status_code == 302
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/me").status_code == 401
    row = AuditLog.objects.get(action="API_TOKEN_REVOKED")
    assert row.entity_id == str(token.pk)


def test_a_token_of_another_user_cannot_be_revoked_through_this_user(web, marketing, teacher):
    make_token(teacher)
    token = ApiToken.objects.get(user=teacher)

    response = web.post(f"/accounts/users/{marketing.pk}/tokens/{token.pk}/revoke/")

    token.refresh_from_db()
    assert response.status_code == 404
    assert token.is_active
    assert not _rows("API_TOKEN_REVOKED")
