import datetime
import json

import pytest
import time_machine

from audit.models import AuditLog
from leads.models import Lead
from tests.factories import make_lead
from tests.money_factories import make_converted_invoice, make_invoice

pytestmark = pytest.mark.django_db


def post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, json.dumps(body), content_type="application/json")


VALID = {
    "name": "Arjun Nair",
    "whatsapp": "+91 98470 12345",
    "email": "arjun@example.com",
    "source": "META_ADS",
    "status": "INTERESTED",
    "quality": "HOT",
    "interestedLevel": "A1_HYBRID",
    "notes": "asked about evening batches",
    "followUpDate": "2026-12-01",
}


def test_creating_a_lead_returns_it_in_camel_case_and_writes_lead_created(marketing_client):
    response = post(marketing_client, "/api/leads", VALID)

    assert response.status_code == 201
    body = response.json()
    lead = Lead.objects.get()
    assert {k: body[k] for k in ("id", "name", "whatsapp", "email", "phone", "source")} == {
        "id": lead.pk,
        "name": "Arjun Nair",
        "whatsapp": "+919847012345",
        "email": "arjun@example.com",
        "phone": "",
        "source": "META_ADS",
    }
    assert (body["status"], body["quality"], body["interestedLevel"]) == (
        "INTERESTED",
        "HOT",
        "A1_HYBRID",
    )
    assert (body["converted"], body["studentId"], body["followUpDate"]) == (
        False,
        None,
        "2026-12-01",
    )
    row = AuditLog.objects.get()
    assert (row.action, row.entity_type, row.entity_id, row.user_email) == (
        "LEAD_CREATED",
        "Lead",
        str(lead.pk),
        "marketing@example.com",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source", "TIKTOK"),
        ("status", "CONVERTED"),
        ("quality", "LUKEWARM"),
        ("interestedLevel", "C1"),
        ("email", "not-an-email"),
        ("whatsapp", "12345"),
        ("whatsapp", "call me"),
        ("phone", "+91-abc"),
        ("followUpDate", "01/12/2026"),
        ("name", ""),
    ],
)
def test_each_invalid_lead_field_is_refused_with_its_name_and_nothing_written(
    marketing_client, field, value
):
    response = post(marketing_client, "/api/leads", {**VALID, field: value})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["details"]) == [field]
    assert Lead.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_missing_required_fields_are_each_named(marketing_client):
    response = post(marketing_client, "/api/leads", {})

    assert response.status_code == 400
    assert sorted(response.json()["details"]) == ["name", "source", "whatsapp"]


def test_malformed_json_is_a_400_not_a_500(marketing_client):
    response = marketing_client.post("/api/leads", "{name: ", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_lead_list_is_newest_first_and_filters_by_status_q_and_converted(
    marketing_client, marketing
):
    old = make_lead(name="Old Lead", status="NEW")
    mid = make_lead(name="Sneha Pillai", status="CONTACTED")
    new = make_lead(name="New Lead", status="NEW")
    converted = make_converted_invoice(actor=marketing).lead

    def ids(query=""):
        response = marketing_client.get(f"/api/leads{query}")
        assert response.status_code == 200
        return [lead["id"] for lead in response.json()["results"]]

    assert ids() == [converted.pk, new.pk, mid.pk, old.pk]
    assert ids("?status=NEW") == [new.pk, old.pk]
    assert ids("?q=sneha") == [mid.pk]
    assert ids("?converted=true") == [converted.pk]
    assert ids("?converted=false") == [new.pk, mid.pk, old.pk]
    students = marketing_client.get("/api/leads?converted=true").json()["results"]
    assert students[0]["studentId"] == converted.student.student_code


def test_lead_list_pages_with_a_next_link_until_the_end(marketing_client):
    created = [make_lead() for _ in range(5)]

    first = marketing_client.get("/api/leads?limit=2").json()
    second = marketing_client.get(first["next"]).json()
    third = marketing_client.get(second["next"]).json()

    seen = [lead["id"] for page in (first, second, third) for lead in page["results"]]
    assert seen == [lead.pk for lead in reversed(created)]
    assert third["next"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=abc", "status=WON", "converted=maybe", "cursor=zz"]
)
def test_bad_list_parameters_are_a_400(marketing_client, query):
    response = marketing_client.get(f"/api/leads?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_lead_list_takes_two_queries_however_many_rows_and_students(
    marketing_client, marketing, django_assert_num_queries
):
    marketing_client.get("/api/leads")  # the token's last-used stamp is written once a minute
    for _ in range(10):
        make_lead()
    make_converted_invoice(actor=marketing)
    make_converted_invoice(actor=marketing)

    with django_assert_num_queries(2):  # the token, the page of leads with their students
        response = marketing_client.get("/api/leads")

    assert len(response.json()["results"]) == 12


def test_patch_records_each_changed_field_before_and_after(marketing_client):
    lead = make_lead(status="NEW", quality="COLD")

    response = patch(
        marketing_client,
        f"/api/leads/{lead.pk}",
        {"status": "CONTACTED", "quality": "COLD", "followUpDate": "2026-12-24"},
    )

    assert response.status_code == 200
    assert response.json()["status"] == "CONTACTED"
    lead.refresh_from_db()
    assert (lead.status, lead.follow_up_date) == ("CONTACTED", datetime.date(2026, 12, 24))
    row = AuditLog.objects.get(action="LEAD_UPDATED")
    assert row.metadata["changes"] == {
        "status": {"before": "NEW", "after": "CONTACTED"},
        "followUpDate": {"before": None, "after": "2026-12-24"},
    }


def test_patch_or_delete_of_a_converted_lead_is_a_409_and_changes_nothing(
    marketing_client, marketing
):
    lead = make_converted_invoice(actor=marketing).lead
    rows_before = AuditLog.objects.count()

    patched = patch(marketing_client, f"/api/leads/{lead.pk}", {"name": "Someone Else"})
    deleted = marketing_client.delete(f"/api/leads/{lead.pk}")

    assert (patched.status_code, patched.json()["code"]) == (409, "lead_converted")
    assert (deleted.status_code, deleted.json()["code"]) == (409, "lead_converted")
    lead.refresh_from_db()
    assert lead.name != "Someone Else"
    assert AuditLog.objects.count() == rows_before


def test_delete_removes_the_lead_and_writes_lead_deleted(marketing_client):
    lead = make_lead(name="Gone Soon")

    response = marketing_client.delete(f"/api/leads/{lead.pk}")

    assert response.status_code == 204
    assert not Lead.objects.exists()
    row = AuditLog.objects.get()
    assert (row.action, row.entity_id, row.metadata["leadName"]) == (
        "LEAD_DELETED",
        str(lead.pk),
        "Gone Soon",
    )


def test_a_lead_with_an_invoice_cannot_be_deleted(marketing_client, marketing):
    invoice = make_invoice(actor=marketing)

    response = marketing_client.delete(f"/api/leads/{invoice.lead_id}")

    assert (response.status_code, response.json()["code"]) == (409, "lead_has_invoices")
    assert Lead.objects.filter(pk=invoice.lead_id).exists()


def test_unknown_lead_is_a_404(marketing_client):
    assert marketing_client.get("/api/leads/999999").status_code == 404
    assert patch(marketing_client, "/api/leads/999999", {"name": "x"}).status_code == 404
    assert marketing_client.delete("/api/leads/999999").status_code == 404


EXPECTED = {"anonymous": 401, "teacher": 403, "marketing": None, "founder": None}


@pytest.mark.parametrize("persona_client", list(EXPECTED), indirect=True)
@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("get", "/api/leads", 200),
        ("post", "/api/leads", 201),
        ("get", "/api/leads/{id}", 200),
        ("patch", "/api/leads/{id}", 200),
        ("delete", "/api/leads/{id}", 204),
    ],
)
def test_lead_api_role_matrix(persona_client, request, method, path, ok):
    persona = request.node.callspec.params["persona_client"]
    lead = make_lead()
    url = path.format(id=lead.pk)
    if method in ("get", "delete"):
        response = getattr(persona_client, method)(url)
    else:
        body = VALID if method == "post" else {"notes": "x"}
        response = getattr(persona_client, method)(
            url, json.dumps(body), content_type="application/json"
        )

    assert response.status_code == (EXPECTED[persona] or ok)
    if EXPECTED[persona]:
        assert Lead.objects.filter(pk=lead.pk, notes="").count() == 1
        assert Lead.objects.count() == 1


def test_pages_walk_rows_created_at_the_same_instant_without_skipping_or_repeating(
    marketing_client,
):
    with time_machine.travel(datetime.datetime(2026, 5, 1, 9, 0, tzinfo=datetime.UTC), tick=False):
        same_moment = [make_lead() for _ in range(5)]

    seen, url = [], "/api/leads?limit=2"
    while url:
        page = marketing_client.get(url).json()
        seen += [lead["id"] for lead in page["results"]]
        url = page["next"]

    assert seen == [lead.pk for lead in reversed(same_moment)]
