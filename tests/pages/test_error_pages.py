"""The error pages say what happened and where to go, in the shared layout; the 500 page needs
neither the database nor the request user."""

import pytest
from django.template import loader
from django.test import Client

from audit.models import AuditLog
from leads.models import Lead

pytestmark = pytest.mark.django_db


def _client(request, who, **kwargs):
    client = Client(**kwargs)
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    return client


@pytest.mark.parametrize("who", ["anonymous", "teacher", "marketing", "founder"])
def test_an_unknown_address_answers_the_styled_404_page(request, who):
    response = _client(request, who).get("/leads/no-such-page/")

    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>There is nothing at this address</h1>" in html
    assert "<code>/leads/no-such-page/</code> does not exist" in html
    assert 'href="/static/css/app.css"' in html
    assert 'href="/">Go to the home page</a>' in html
    # The lists are offered to those who may open them.
    assert ('href="/leads/">Leads</a>' in html) is (who in ("marketing", "founder"))


def test_a_missing_lead_answers_the_styled_404_page(request):
    response = _client(request, "marketing").get("/leads/999999/")

    assert response.status_code == 404
    assert "There is nothing at this address" in response.content.decode()


def test_a_teacher_opening_a_money_page_is_told_why_and_where_to_go(request, teacher):
    response = _client(request, "teacher").get("/leads/")

    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>This page is not for your account</h1>" in html
    assert "Leads and money are for founders and marketing staff." in html
    assert "You are logged in as Tara Teacher (teacher)." in html
    assert 'href="/">Go to your home page</a>' in html


def test_marketing_opening_the_user_pages_is_told_they_are_for_founders(request):
    response = _client(request, "marketing").get("/accounts/users/")

    assert response.status_code == 403
    assert "Managing users and their API tokens is for founders." in response.content.decode()


@pytest.mark.urls("tests.audit.urls_failing")
def test_a_failing_page_answers_the_500_page_with_its_request_id(request):
    client = _client(request, "marketing", raise_request_exception=False)

    response = client.get("/test/explode", HTTP_X_REQUEST_ID="req-500-page-1")

    html = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong on our side</h1>" in html
    assert "quote the request id <code>req-500-page-1</code>" in html
    assert "page broke" not in html and "Traceback" not in html
    assert AuditLog.objects.get(action="SYSTEM_ERROR").request_id == "req-500-page-1"


def test_the_500_page_renders_without_a_request_and_without_the_database(django_db_blocker):
    template = loader.get_template("500.html")

    with django_db_blocker.block():
        html = template.render()

    assert "Something went wrong on our side" in html
    assert "Log out" not in html  # no user, no menu


def test_a_form_sent_without_its_csrf_token_answers_the_styled_page_and_saves_nothing(request):
    client = _client(request, "marketing", enforce_csrf_checks=True)

    response = client.post(
        "/leads/new/", {"name": "Arjun", "whatsapp": "+919847012345", "source": "META_ADS"}
    )

    assert response.status_code == 403
    assert "<h1>This form has expired</h1>" in response.content.decode()
    assert Lead.objects.count() == 0


def test_a_request_for_another_host_answers_the_styled_400_page(settings):
    response = Client(HTTP_HOST="evil.example").get("/accounts/login/")

    assert response.status_code == 400
    assert "<h1>This request could not be understood</h1>" in response.content.decode()
