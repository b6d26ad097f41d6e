"""Query parameters that used to reach the database and come back as a 500 (CONTRACT §2, §4)."""

from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.django_db


def _cursor(stamp: str, pk: object = 1) -> str:
    return base64.urlsafe_b64encode(json.dumps([stamp, pk]).encode()).decode()


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-01-01T00:00:00+16:00",  # Python takes it, PostgreSQL refuses it
        "2026-01-01T00:00:00-20:30",
        "2026-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-05:00",  # after year 9999 in UTC
        "2026-01-01T00:00:00+99:00",
    ],
)
@pytest.mark.parametrize("path", ["/api/leads", "/api/invoices", "/api/students"])
def test_a_cursor_whose_timestamp_cannot_be_stored_is_a_400(
    marketing_client, nothing_written, stamp, path
):
    response = marketing_client.get(path, {"cursor": _cursor(stamp)})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["details"]) == ["cursor"]
    nothing_written()


@pytest.mark.parametrize("pk", [2**63, -1, True, "1"])
def test_a_cursor_whose_id_is_not_a_row_id_is_a_400(marketing_client, nothing_written, pk):
    response = marketing_client.get("/api/leads", {"cursor": _cursor("2026-01-01T00:00:00Z", pk)})
    assert response.status_code == 400
    assert list(response.json()["details"]) == ["cursor"]
    nothing_written()


def test_a_cursor_at_the_edge_of_the_offsets_postgresql_takes_is_fine(marketing_client):
    response = marketing_client.get("/api/leads", {"cursor": _cursor("2026-01-01T00:00:00+15:59")})
    assert response.status_code == 200
