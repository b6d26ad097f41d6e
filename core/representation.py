"""Output serializers bound once per process, for the bodies a hot path renders.

`SomeSerializer(obj).data` builds the serializer's fields afresh on every call: DRF deep-copies
every declared field (and those of nested serializers) before it binds them, which cost a
pay-and-convert answer more than rendering its values (bench/pay_and_convert.py). An output
serializer without context keeps no per-object state once its fields are bound, so one instance
per class renders every object; `.data` would return the same values, in a ReturnDict.
"""

from __future__ import annotations

import functools
from typing import Any

from rest_framework import serializers


@functools.cache
def _bound(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    serializer = serializer_class()
    serializer.fields  # noqa: B018 - bind them now, once, rather than on the first render
    return serializer


def represent(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """What `serializer_class(instance).data` gives, from the class's shared instance."""
    return _bound(serializer_class).to_representation(instance)
