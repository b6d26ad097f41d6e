"""Shared by the tests of the API's edges: what a refused request must leave behind (nothing)."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from invoices.models import Invoice, InvoiceItem
from leads.models import Lead
from payments.models import IdempotencyRecord, Payment, Student

_WRITTEN_BY_REQUESTS = (AuditLog, Lead, Invoice, InvoiceItem, Student, Payment, IdempotencyRecord)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in _WRITTEN_BY_REQUESTS}


class RowCounts:
    """The row counts when taken; calling it asserts they held (nothing written since)."""

    def __init__(self) -> None:
        self.before = _counts()

    def retake(self) -> None:
        """After the test's own setup, for a test that builds its data in its body."""
        self.before = _counts()

    def __call__(self) -> None:
        assert _counts() == self.before


@pytest.fixture
def nothing_written(db) -> RowCounts:
    return RowCounts()
