"""The lead pages: what the edit form shows comes back unchanged when saved untouched."""

import datetime

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from audit.models import AuditLog
from leads.models import Lead
from tests.factories import make_lead
from tests.html_forms import read_post_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(marketing):
    client = Client()
    client.force_login(marketing)
    return client


def test_saving_the_lead_edit_page_untouched_changes_nothing(staff):
    lead = make_lead(
        whatsapp="+919847012345",
        phone="+914712345678",
        status="CONTACTED",
        quality="HOT",
        interested_level="A2",
        notes="asked about evening batches",
        follow_up_date=datetime.date(2026, 12, 24),
    )
    before = model_to_dict(Lead.objects.get(pk=lead.pk))

    page = staff.get(f"/leads/{lead.pk}/edit/").content.decode()
    data, inputs = read_post_form(page, having="follow_up_date")
    response = staff.post(f"/leads/{lead.pk}/edit/", data)

    assert inputs["follow_up_date"]["type"] == "date"
    assert data["follow_up_date"] == "2026-12-24"
    assert response.status_code == 302
    assert model_to_dict(Lead.objects.get(pk=lead.pk)) == before
    assert not AuditLog.objects.filter(action="LEAD_UPDATED").exists()


def test_a_follow_up_date_entered_on_the_new_lead_page_shows_on_its_edit_page(staff):
    staff.post(
        "/leads/new/",
        {
            "name": "Arjun",
            "whatsapp": "+919847012345",
            "source": "META_ADS",
            "status": "NEW",
            "follow_up_date": "2026-12-01",
        },
    )
    lead = Lead.objects.get()

    data, _ = read_post_form(
        staff.get(f"/leads/{lead.pk}/edit/").content.decode(), having="follow_up_date"
    )

    assert lead.follow_up_date == datetime.date(2026, 12, 1)
    assert data["follow_up_date"] == "2026-12-01"


@pytest.mark.parametrize(
    ("who", "status"), [("anonymous", 302), ("teacher", 403), ("marketing", 302), ("founder", 302)]
)
def test_saving_the_lead_pages_needs_money_staff(who, status, request):
    lead = make_lead(whatsapp="+919847012345", follow_up_date=datetime.date(2026, 12, 24))
    client = Client()
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    form = {"name": "Changed", "whatsapp": "98470 99999", "source": "OTHER", "status": "NEW"}

    created = client.post("/leads/new/", form)
    edited = client.post(f"/leads/{lead.pk}/edit/", form)

    assert (created.status_code, edited.status_code) == (status, status)
    if who in ("anonymous", "teacher"):
        assert list(Lead.objects.values_list("name", "whatsapp", "follow_up_date")) == [
            (lead.name, "+919847012345", datetime.date(2026, 12, 24))
        ]
        assert AuditLog.objects.filter(action__startswith="LEAD_").count() == 0
    else:
        assert sorted(Lead.objects.values_list("name", "whatsapp")) == [
            ("Changed", "+919847099999"),
            ("Changed", "+919847099999"),
        ]
