"""Batches are edited in the Django admin; every change is audited with before and after, in the
same transaction."""

from __future__ import annotations

import datetime

import pytest
from django.db import DatabaseError
from django.test import Client

from audit.models import Action, AuditLog
from payments import batches
from payments.models import Batch
from tests.triggers import inserts_refused

pytestmark = pytest.mark.django_db

ADD = "/admin/payments/batch/add/"


def _form(**overrides):
    data = {"code": "A1-MAR-EVE-01", "level": "A1", "timing": "EVENING", "seats": "10"}
    data.update({"start_date": "2026-03-02"}, **overrides)
    return data


@pytest.fixture
def founder_admin(founder):
    client = Client()
    client.force_login(founder)
    return client


@pytest.fixture
def batch():
    return Batch.objects.create(
        code="A1-MAR-EVE-01",
        level="A1",
        timing="EVENING",
        seats=10,
        start_date=datetime.date(2026, 3, 2),
    )


def _rows(action):
    return list(
        AuditLog.objects.filter(action=action).values_list(
            "entity_type", "entity_id", "user_email", "metadata"
        )
    )


@pytest.mark.parametrize("persona", ["anonymous", "teacher", "marketing"])
def test_only_founders_reach_the_batch_admin(persona, request):
    client = Client()
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    response = client.post(ADD, _form())
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/login/" in response["Location"]
    assert not Batch.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="BATCH_").exists()


def test_creating_a_batch_is_audited(founder_admin):
    response = founder_admin.post(ADD, _form())
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert _rows(Action.BATCH_CREATED) == [
        (
            "Batch",
            str(batch.pk),
            "founder@example.com",
            {
                "code": "A1-MAR-EVE-01",
                "level": "A1",
                "timing": "EVENING",
                "seats": 10,
                "startDate": "2026-03-02",
            },
        )
    ]


def test_an_edit_records_before_and_after_of_each_changed_field(founder_admin, batch):
    response = founder_admin.post(
        f"/admin/payments/batch/{batch.pk}/change/", _form(seats="12", start_date="")
    )
    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.seats, batch.start_date) == (12, None)
    assert _rows(Action.BATCH_UPDATED) == [
        (
            "Batch",
            str(batch.pk),
            "founder@example.com",
            {
                "code": "A1-MAR-EVE-01",
                "changes": {
                    "seats": {"before": 10, "after": 12},
                    "startDate": {"before": "2026-03-02", "after": None},
                },
            },
        )
    ]


def test_saving_unchanged_writes_no_row(founder_admin, batch):
    founder_admin.post(f"/admin/payments/batch/{batch.pk}/change/", _form())
    assert _rows(Action.BATCH_UPDATED) == []


def test_deleting_one_or_many_is_audited(founder_admin):
    one, two, three = (
        Batch.objects.create(code=f"B-{n}", level="A1", timing="MORNING") for n in range(3)
    )
    response = founder_admin.post(f"/admin/payments/batch/{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    response = founder_admin.post(
        "/admin/payments/batch/",
        {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Batch.objects.exists()
    deleted = sorted((row[1], row[3]["code"]) for row in _rows(Action.BATCH_DELETED))
    assert deleted == [(str(b.pk), b.code) for b in (one, two, three)]


@pytest.fixture
def batch_rows_fail(owner_connection):
    with inserts_refused(
        owner_connection,
        table="audit_auditlog",
        name="test_refuse_batch_rows",
        when="NEW.action LIKE 'BATCH_%'",
    ):
        yield


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_its_audit_row_the_change_is_not_stored(founder, batch, batch_rows_fail):
    batch.seats = 12
    with pytest.raises(DatabaseError):
        batches.batch_update(batch=batch, actor=founder)
    batch.refresh_from_db()
    assert batch.seats == 10
    with pytest.raises(DatabaseError):
        batches.batch_create(
            batch=Batch(code="B1-APR", level="B1", timing="MORNING"), actor=founder
        )
    assert list(Batch.objects.values_list("code", flat=True)) == ["A1-MAR-EVE-01"]
