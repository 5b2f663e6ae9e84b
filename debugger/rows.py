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
import os
import uuid

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
    prepared = _prepared(fields, _converters(fields, copy=False), rows)
    inserted = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = prepared[start:start + INSERT_CHUNK]
            params = [value for row in chunk for value in row]
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
    postgres = connection.vendor == "postgresql"
    prepared = _prepared(fields, _converters(fields, copy=postgres), rows, _Sealer(model, scope_owner))
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


def uuid4s(count: int) -> list[uuid.UUID]:
    """`count` random version-4 UUIDs, as many `uuid.uuid4()` calls would give (16 random bytes each, version and
    variant bits set) but from one read of the OS's randomness: a batch's primary keys, without a system call
    per row."""
    data = os.urandom(16 * count)
    return [uuid.UUID(bytes=data[start:start + 16], version=4) for start in range(0, 16 * count, 16)]


def lease_ahead(model: type[models.Model], scope_owner: models.Model, uses: int) -> None:
    """Before the transaction: make sure the data-key lease of the rows' scope covers about `uses` values
    (`keyring.writers.lease_ahead`), so the DataKey row is not locked for the length of the request."""
    if uses and any(isinstance(field, EncryptedField) for field in model._meta.concrete_fields):
        writers.lease_ahead(write_scope(scope_owner), uses)


class _Sealer:
    """Seals one model's values under one scope, taking the data key only when a value needs it: all the batch's
    uses at once when the lease has them (`writers.active_cipher_for`), else value by value."""

    def __init__(self, model: type[models.Model], owner: models.Model | None):
        self.label = model._meta.label_lower
        self.owner = owner

    def seal(self, columns: dict[EncryptedField, list], pks: list) -> dict[EncryptedField, list]:
        """Each encrypted column's values (None stays None) as envelopes bound to their row's pk."""
        fields = list(columns)
        encoded = [[None if value is None else field.encode(value) for value in columns[field]] for field in fields]
        uses = sum(value is not None for column in encoded for value in column)
        if not uses:
            return columns
        if self.owner is None:
            raise ValueError(f"{self.label}: encrypted rows need a scope_owner")
        scope = write_scope(self.owner)
        cipher = writers.active_cipher_for(scope, uses)
        if cipher is None:
            sealed = [[None if plaintext is None else self._seal_one(scope, field, plaintext, pk)
                       for plaintext, pk in zip(column, pks, strict=True)]
                      for field, column in zip(fields, encoded, strict=True)]
        else:
            _check_scope(cipher, scope)
            by_row = cipher.seal_rows(list(zip(*encoded, strict=True)), model_label=self.label,
                                      fields=[field.name for field in fields], pks=pks)
            sealed = [list(column) for column in zip(*by_row, strict=True)]
        return dict(zip(fields, sealed, strict=True))

    def _seal_one(self, scope, field: EncryptedField, plaintext: bytes, pk) -> bytes:
        cipher = keyring.active_cipher(scope)
        _check_scope(cipher, scope)
        return cipher.seal_field(plaintext, model_label=self.label, field=field.name, pk=pk)


def _check_scope(cipher, scope) -> None:
    """As EncryptedField.pre_save: never seal under another scope's data key."""
    if cipher.scope != scope.key_scope:
        raise RuntimeError(f"data key {cipher.dek_id} is not of the scope being written")


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


def _prepared(fields: list[models.Field], converters: list, rows: list[dict], sealer: _Sealer | None = None
              ) -> list[tuple]:
    """The rows as tuples of database values, built a column at a time (encrypted columns sealed together)."""
    columns = [[row[field.attname] for row in rows] for field in fields]
    to_seal = {field: column for field, column, convert in zip(fields, columns, converters, strict=True)
               if convert == "seal"}
    if to_seal:
        if sealer is None:
            raise ValueError("encrypted columns are written with write(), which seals them")
        pks = next((column for field, column in zip(fields, columns, strict=True) if field.primary_key),
                   [None] * len(rows))  # no pk column: sealing refuses (the pk is in the AAD)
        sealed = sealer.seal(to_seal, pks)
        columns = [sealed.get(field, column) for field, column in zip(fields, columns, strict=True)]
    for index, convert in enumerate(converters):
        if convert is not None and convert != "seal":
            columns[index] = [None if value is None else convert(value) for value in columns[index]]
    return list(zip(*columns, strict=True))
