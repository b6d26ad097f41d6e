import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_anonymous_home_redirects_to_login():
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


@pytest.mark.parametrize("persona", ["teacher", "marketing", "founder"])
def test_every_role_has_a_home_page(request, persona):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/")
    assert response.status_code == 200
    assert request.getfixturevalue(persona).name.split()[0].encode() in response.content


def test_teacher_home_says_there_is_no_access_to_money():
    from tests.factories import make_user

    client = Client()
    client.force_login(make_user(role="TEACHER", name="Tom Teacher"))
    assert b"no access to leads, money or monitoring" in client.get("/").content
