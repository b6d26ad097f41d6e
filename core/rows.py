"""Rows read and written by statements written out by hand, as the ORM's own would.

For the few statements of a hot path whose building through the ORM (the query, its compiler)
costs more than the round trip (bench/pay_and_convert.py). A read names the model's columns in
the model's order (`select_list`), and `instance` makes each row a model instance through
Model.from_db, with the conversions the ORM would apply to each column's value. A write sends
the values Model.save or QuerySet.update would: each field's get_db_prep_save (after pre_save,
for auto_now and defaults, where save would call it). Every statement goes through Django's
cursor, so the call deadline, error translation and query capture see it like any other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def cursor(conn: BaseDatabaseWrapper) -> CursorWrapper:
    """Django's cursor for one of these statements: on our PostgreSQL backend, one that binds
    the parameters on the server and prepares the statement (core.postgresql.PreparedCursor).
    Only for SQL whose placeholders take plain values: no `IN %s` with a tuple, no `%s` whose
    type the server cannot infer from where it stands."""
    bound = getattr(conn, "bound_cursor", None)
    return bound() if bound is not None else conn.cursor()


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


def insert(obj: Model) -> None:
    """INSERT `obj` as obj.save(force_insert=True) would, and give it its id."""
    conn = connections[DEFAULT_DB_ALIAS]
    if not conn.features.can_return_columns_from_insert:
        obj.save(force_insert=True)
        return
    qn = conn.ops.quote_name
    columns, params = insert_values(obj)
    pk = qn(cast(str, obj._meta.pk.column))
    sql = (
        f"INSERT INTO {qn(obj._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(params))}) RETURNING {pk}"
    )
    with cursor(conn) as cur:
        cur.execute(sql, params)
        (obj.pk,) = cur.fetchone()
    saved(obj)


def insert_values(obj: Model, *, skip: Sequence[str] = ()) -> tuple[list[str], list[Any]]:
    """The quoted columns and values an INSERT of `obj` sends: every concrete field but the
    generated id (and `skip`)."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    columns, params = [], []
    for field in obj._meta.local_concrete_fields:
        if field.primary_key or field.name in skip:
            continue
        columns.append(qn(cast(str, field.column)))
        params.append(field.get_db_prep_save(field.pre_save(obj, True), conn))
    return columns, params


def saved(obj: Model) -> None:
    """Mark `obj`, just inserted with its id, as saved (what Model.save leaves in _state)."""
    obj._state.adding = False
    obj._state.db = DEFAULT_DB_ALIAS


def assignments(obj: Model, names: Sequence[str]) -> tuple[str, list[Any]]:
    """`"col" = %s, ...` and its values for a save of these fields of `obj` (update_fields)."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    parts, params = [], []
    for name in names:
        field = cast(Field, obj._meta.get_field(name))  # a concrete field, not a relation's end
        value = field.pre_save(obj, False)
        parts.append(f"{qn(cast(str, field.column))} = %s")
        params.append(field.get_db_prep_save(value, conn))
    return ", ".join(parts), params


def update_where(model: type[Model], values: dict[str, Any], where: dict[str, Any]) -> int:
    """`model.objects.filter(**where).update(**values)` for plain values and exact matches on
    concrete fields; returns the number of rows updated."""
    conn = connections[DEFAULT_DB_ALIAS]
    qn = conn.ops.quote_name
    meta = model._meta
    sets, conditions, params = [], [], []
    for name, value in values.items():
        field = cast(Field, meta.get_field(name))
        sets.append(f"{qn(cast(str, field.column))} = %s")
        params.append(field.get_db_prep_save(value, conn))
    for name, value in where.items():
        field = cast(Field, meta.pk if name == "pk" else meta.get_field(name))
        conditions.append(f"{qn(cast(str, field.column))} = %s")
        params.append(field.get_db_prep_value(value, conn))
    sql = (
        f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)}"
    )
    with cursor(conn) as cur:
        cur.execute(sql, params)
        return cur.rowcount


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
