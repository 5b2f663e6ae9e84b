"""Ingest's inserts without the ORM's per-row work: one multi-row INSERT for traces, then `COPY` (PostgreSQL,
through psycopg 3) or `executemany` (SQLite) for spans, payload captures and log lines.

Rows are plain dicts of attribute names (`trace_id`, not `trace`) to Python values. Encrypted columns are sealed
here value by value exactly as `EncryptedField.pre_save` seals them on `save()`/`bulk_create()`: one use of the
scope's active data key per value (taken together when the lease has them, `writers.active_cipher_for`, else
one by one with `keyring.active_cipher`), a v2 envelope whose AAD names the scope, the model,
the field and the row's primary key. Only the ORM's model instances, SQL compiler and per-object bookkeeping are
skipped, so what lands in the table is byte-for-byte the format the ORM writes and reads.
"""

from __future__ import annotations

import functools

from django.db import connection, connections, models

from encryption_keys import keyring
from encryption_keys.fields import EncryptedField, write_scope
from encryption_keys.keyring import writers

INSERT_CHUNK = 500  # rows per multi-row INSERT: well under SQLite's 32,766 bound variables


def insert_new(model: type[models.Model], rows: list[dict], *, unique: tuple[str, ...],
               returning: tuple[str, ...]) -> list[tuple]:
    """Insert the rows whose `unique` columns are not taken yet (`ON CONFLICT DO NOTHING`); return the
    `returning` columns of those inserted, in no particular order.

    Rows are inserted in the order given: callers sort them on the unique key, so two requests inserting
    overlapping sets wait for each other in the same order and cannot deadlock."""
    if not rows:
        return []
    fields = _fields(model, rows[0])
    table, quote = model._meta.db_table, connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    conflict = ", ".join(quote(model._meta.get_field(name).column) for name in unique)
    answer = ", ".join(quote(model._meta.get_field(name).column) for name in returning)
    placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    converters = _converters(fields, copy=False)
    inserted = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start:start + INSERT_CHUNK]
            params = [value for row in chunk for value in _prepared(fields, converters, row)]
            cursor.execute(
                f"INSERT INTO {quote(table)} ({columns}) VALUES {', '.join([placeholder] * len(chunk))} "  # noqa: S608
                f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {answer}", params,
            )
            inserted += cursor.fetchall()
    return inserted


def write(model: type[models.Model], rows: list[dict], *, scope_owner: models.Model | None = None) -> None:
    """Insert rows of one model, all new. Encrypted fields hold plaintext and are sealed under the write scope
    of `scope_owner` (an unsaved instance of `model` whose `encryption_scope()` is the rows' scope).

    Raises `EncryptionUnavailable` when a value needs a data key and none can be had: the caller's
    transaction then rolls back and nothing of the request is stored."""
    if not rows:
        return
    fields = _fields(model, rows[0])
    encrypted = [field.attname for field in fields if isinstance(field, EncryptedField)]
    sealer = _Sealer(model, scope_owner, values=sum(row[name] is not None for row in rows for name in encrypted))
    postgres = connection.vendor == "postgresql"
    converters = _converters(fields, copy=postgres)
    prepared = [_prepared(fields, converters, row, sealer) for row in rows]
    table, quote = model._meta.db_table, connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor:
        if postgres:
            # Binary: envelopes and bodies go as bytes, not as hex text twice their size for the server to decode.
            with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_postgres_type(field) for field in fields])
                for row in prepared:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO {quote(table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})",  # noqa: S608
                prepared,
            )


def lease_ahead(model: type[models.Model], scope_owner: models.Model, uses: int) -> None:
    """Before the transaction: make sure the data-key lease of the rows' scope covers about `uses` values
    (`keyring.writers.lease_ahead`), so the DataKey row is not locked for the length of the request."""
    if uses and any(isinstance(field, EncryptedField) for field in model._meta.concrete_fields):
        writers.lease_ahead(write_scope(scope_owner), uses)


class _Sealer:
    """Seals one model's values under one scope, taking the data key only when a value needs it."""

    def __init__(self, model: type[models.Model], owner: models.Model | None, *, values: int):
        self.label = model._meta.label_lower
        self.owner = owner
        self.values = values
        self.scope = None
        self.cipher = None  # all `values` uses taken at once, when the lease has them

    def __call__(self, field: EncryptedField, value, pk) -> bytes:
        if self.scope is None:
            if self.owner is None:
                raise ValueError(f"{self.label}: encrypted rows need a scope_owner")
            self.scope = write_scope(self.owner)
            self.cipher = writers.active_cipher_for(self.scope, self.values)
        cipher = self.cipher or keyring.active_cipher(self.scope)
        if cipher.scope != self.scope.key_scope:  # as EncryptedField.pre_save: never seal under another scope
            raise RuntimeError(f"data key {cipher.dek_id} is not of the scope being written")
        return cipher.seal_field(field.encode(value), model_label=self.label, field=field.name, pk=pk)


def _fields(model: type[models.Model], row: dict) -> list[models.Field]:
    by_attname = {field.attname: field for field in model._meta.concrete_fields}
    return [by_attname[name] for name in row]


# Values psycopg takes as they are (COPY and parameters alike): Django's get_db_prep_save only re-checks them.
_AS_IS_ON_POSTGRES = {"CharField", "TextField", "IntegerField", "BigIntegerField", "SmallIntegerField",
                      "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField", "FloatField",
                      "BooleanField", "DateTimeField", "UUIDField", "BigAutoField", "AutoField", "ForeignKey"}


def _converters(fields: list[models.Field], *, copy: bool) -> list:
    """Per column: None (as is), "seal", or a function to the database value, decided once per statement."""
    real = connections[connection.alias]  # not the proxy: it costs a lookup per attribute read
    postgres = real.vendor == "postgresql"
    converters = []
    for field in fields:
        if isinstance(field, EncryptedField):
            converters.append("seal")
        elif postgres and field.get_internal_type() in _AS_IS_ON_POSTGRES and (
                not field.is_relation or field.target_field.get_internal_type() in _AS_IS_ON_POSTGRES):
            converters.append(None)
        elif postgres and copy and isinstance(field, models.JSONField):
            converters.append(None)  # binary COPY with the column's type set: psycopg dumps the object as jsonb
        else:
            converters.append(functools.partial(_db_value, field, real))
    return converters


def _db_value(field: models.Field, real_connection, value):
    return field.get_db_prep_save(value, real_connection)


_POSTGRES_TYPE_NAMES = {"timestamp with time zone": "timestamptz", "double precision": "float8"}


def _postgres_type(field: models.Field) -> str:
    """The column's type as psycopg's binary COPY names it (`varchar(200)` → `varchar`)."""
    name = field.db_type(connection).split("(")[0].strip()
    return _POSTGRES_TYPE_NAMES.get(name, name)


def _prepared(fields: list[models.Field], converters: list, row: dict, sealer: _Sealer | None = None) -> tuple:
    values = []
    pk = None
    for field in fields:
        if field.primary_key:
            pk = row[field.attname]
    for field, convert in zip(fields, converters, strict=True):
        value = row[field.attname]
        if value is None or convert is None:
            pass
        elif convert == "seal":
            if sealer is None:
                raise ValueError("encrypted columns are written with write(), which seals them")
            value = sealer(field, value, pk)
        else:
            value = convert(value)
        values.append(value)
    return tuple(values)
