"""Rows read by a statement written out by hand, turned into model instances as the ORM's own.

For the few reads of a hot path whose building through the ORM (the query, its compiler) costs
more than the round trip (bench/pay_and_convert.py): the statement names the model's columns
in the model's order (`select_list`), and `instance` makes each row a model instance through
Model.from_db, with the conversions the ORM would apply to each column's value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def select_list(model: type[Model], alias: str, fields: Sequence[str] = ()) -> str:
    """`alias."col", ...` for the model's concrete fields (or the named ones), in their order."""
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return ", ".join(f"{alias}.{qn(cast(str, f.column))}" for f in _fields(model, tuple(fields)))


def instance(model: type[M], values: Sequence[Any], fields: Sequence[str] = ()) -> M:
    """The instance of a row read with `select_list(model, ..., fields)`; with `fields`, the
    others are deferred, as QuerySet.only leaves them."""
    converters = _converters(model, tuple(fields), connections[DEFAULT_DB_ALIAS].vendor)
    if converters:
        conn = connections[DEFAULT_DB_ALIAS]
        values = list(values)
        for i, expression, fns in converters:
            for fn in fns:
                values[i] = fn(values[i], expression, conn)
    names = [f.attname for f in _fields(model, tuple(fields))]
    return model.from_db(DEFAULT_DB_ALIAS, names, values)


@functools.cache
def _fields(model: type[Model], names: tuple[str, ...]) -> tuple[Field, ...]:
    concrete = model._meta.concrete_fields
    if not names:
        return tuple(concrete)
    # In the model's order, as from_db reads them.
    return tuple(f for f in concrete if f.name in names or f.attname in names)


@functools.cache
def _converters(
    model: type[Model], names: tuple[str, ...], vendor: str
) -> tuple[tuple[int, Any, tuple[Callable[..., Any], ...]], ...]:
    # What SQLCompiler.get_converters finds for each column (none today for the models read
    # this way on PostgreSQL); kept so that a field that gains one is still read right.
    conn = connections[DEFAULT_DB_ALIAS]
    found = []
    for i, field in enumerate(_fields(model, names)):
        col = field.get_col(model._meta.db_table)
        fns = (*conn.ops.get_db_converters(col), *col.get_db_converters(conn))
        if fns:
            found.append((i, col, fns))
    return tuple(found)
