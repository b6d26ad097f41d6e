"""Free text over descriptions: `q` on GET /api/system/audit-logs and its export."""

from __future__ import annotations

import json

import pytest

from audit.models import Action, AuditLog

pytestmark = pytest.mark.django_db

URL = "/api/system/audit-logs"
EXPORT = "/api/system/audit-logs/export"


def _ids(response):
    assert response.status_code == 200, response.content
    return [log["id"] for log in response.json()["logs"]]


@pytest.fixture
def described():
    """Rows by description, oldest first."""

    def make(description: str, severity: str = "INFO") -> int:
        return AuditLog.objects.create(
            action="LEAD_UPDATED", severity=severity, description=description
        ).id

    return {
        "asha": make("Lead Asha Menon updated"),
        "invoice": make("Invoice PB-2026-0007 sent to ASHA"),
        "other": make("Lead Ravi created"),
        "failed": make("E-mail to asha@example.com failed", severity="ERROR"),
        "percent": make("Discount of 100% applied"),
    }


@pytest.mark.parametrize(
    ("persona_client", "status"),
    [("anonymous", 401), ("teacher", 403), ("marketing", 403), ("founder", 200)],
    indirect=["persona_client"],
)
def test_only_founders_search_the_audit_log(persona_client, status, described):
    response = persona_client.get(URL, {"q": "asha"})
    assert response.status_code == status
    if status == 200:
        assert _ids(response) == [described["failed"], described["invoice"], described["asha"]]


def test_q_finds_the_text_anywhere_in_the_description_in_any_case(founder_client, described):
    assert _ids(founder_client.get(URL, {"q": "ASHA"})) == [
        described["failed"],
        described["invoice"],
        described["asha"],
    ]
    assert _ids(founder_client.get(URL, {"q": "PB-2026-0007"})) == [described["invoice"]]
    assert _ids(founder_client.get(URL, {"q": "nobody here"})) == []


def test_q_combines_with_the_other_filters(founder_client, described):
    assert _ids(founder_client.get(URL, {"q": "asha", "type": "errors"})) == [described["failed"]]
    assert _ids(founder_client.get(URL, {"q": "asha", "after": described["invoice"]})) == [
        described["failed"]
    ]


def test_like_wildcards_in_q_are_plain_characters(founder_client, described):
    assert _ids(founder_client.get(URL, {"q": "100%"})) == [described["percent"]]
    assert _ids(founder_client.get(URL, {"q": "Lead_Asha"})) == []


def test_spaces_around_q_are_dropped(founder_client, described):
    assert _ids(founder_client.get(URL, {"q": "  Ravi  "})) == [described["other"]]


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "This field may not be blank."),
        ("   ", "This field may not be blank."),
        ("as", "Ensure this field has at least 3 characters."),
        ("  as  ", "Ensure this field has at least 3 characters."),
        ("x" * 101, "Ensure this field has no more than 100 characters."),
        ("a-b-c", "Search for at least three letters or digits in a row."),
        ("%%%", "Search for at least three letters or digits in a row."),
    ],
)
@pytest.mark.parametrize("url", [URL, EXPORT])
def test_bad_q_is_a_400_that_writes_nothing(founder_client, described, url, q, message):
    before = AuditLog.objects.count()
    response = founder_client.get(url, {"q": q, "format": "csv"} if url == EXPORT else {"q": q})
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["details"]) == ("validation_error", {"q": [message]})
    assert AuditLog.objects.count() == before


def test_q_of_the_longest_length_is_accepted(founder_client, described):
    assert _ids(founder_client.get(URL, {"q": "y" * 100})) == []


def test_q_given_twice_is_a_400(founder_client, described):
    response = founder_client.get(URL + "?q=asha&q=ravi")
    assert response.status_code == 400
    assert response.json()["details"] == {"q": ["Give this parameter once."]}


def test_the_export_takes_q_and_keeps_the_search_text_off_the_trail(founder_client, described):
    response = founder_client.get(EXPORT, {"format": "jsonl", "q": "Asha Menon"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [described["asha"]]
    access = AuditLog.objects.get(action=Action.DATA_ACCESSED)
    assert access.metadata["query"] == {"q": "(10 characters)", "format": "jsonl"}
    assert "Asha" not in json.dumps(access.metadata)
