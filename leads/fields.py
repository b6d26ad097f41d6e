"""Serializer fields for lead data that other apps' APIs take as well (an invoice item's level)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from leads.models import Level


class LevelField(serializers.ChoiceField):
    """A course level, or blank when not yet known."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Level.choices, required=False, allow_blank=True, **kwargs)
