"""Encrypted model fields: a binary column holding the envelope (v2 written, v1 read), read back as a SealedValue.

    class PayloadCapture(models.Model):
        id = models.UUIDField(primary_key=True, default=uuid.uuid4)
        body = EncryptedBinaryField()

        def encryption_scope(self) -> EncryptionScope: ...   # who the row belongs to: no query if related
                                                             # objects are loaded (select_related)
        def encryption_wrapping_key(self) -> str | None: ... # optional, writes only: a KMS key override

    capture.body = b"..."        # plaintext is sealed on save
    capture.body                 # → SealedValue; str() is "[encrypted]"
    capture.body.reveal()        # → plaintext, or raises DecryptionError

A value is opened only if the data key its envelope names belongs to the row's `encryption_scope()`
(organization, region, purpose, scope reference) — checked by the keyring for every read path; a row
moved to another tenant or scope reads as `integrity` (docs/envelope.md).

Lookups other than `isnull` raise FieldError: the column holds ciphertext, so it cannot be searched.
"""

from __future__ import annotations

import dataclasses
import json

from django.core import checks
from django.core.exceptions import FieldError
from django.db import models

from encryption_keys import keyring
from encryption_keys.envelope import DataKeyCipher, KeyScope, peek_dek_id

MASK = "[encrypted]"


class SealedValue:
    """An encrypted value as read from (or about to be written to) the database. Never plaintext by accident.

    It knows its row (``owner``) and field, so what it may be opened under — the row's scope, model, field
    and pk — is worked out when it is revealed, from the row as it is then.
    """

    __slots__ = ("_field", "_owner", "envelope")

    def __init__(self, envelope: bytes, *, owner, field: EncryptedField):
        self.envelope = bytes(envelope)
        self._owner = owner
        self._field = field

    def __str__(self):
        return MASK

    def __repr__(self):
        return f"<SealedValue {MASK} {len(self.envelope)} bytes>"

    def __reduce__(self):
        raise TypeError("SealedValue is not picklable")

    @property
    def data_key_id(self):
        return peek_dek_id(self.envelope)

    @property
    def owner(self):
        """The model instance this value belongs to."""
        return self._owner

    @property
    def field_name(self) -> str:
        return self._field.name

    def expected_scope(self) -> KeyScope:
        """The scope the row belongs to now: its data key must belong to the same one."""
        return self._owner.encryption_scope().key_scope

    def open_with(self, cipher: DataKeyCipher):
        """Open with ``cipher``; refused (``ScopeMismatch``) when the cipher's key is not of the row's scope."""
        owner = self._owner
        plaintext = cipher.open_field(self.envelope, scope=self.expected_scope(), model_label=owner._meta.label_lower,
                                      field=self._field.name, pk=owner.pk)
        return self._field.decode(plaintext)

    def reveal(self):
        """The plaintext. Raises DecryptionError (with a stable `code`) when it cannot be had."""
        return keyring.reveal(self)

    def reveal_or_error(self) -> keyring.Revealed:
        return keyring.reveal_many([self])[0]


class _Plaintext:
    """A value assigned in Python and not saved yet; masked like a SealedValue."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return MASK

    def __repr__(self):
        return f"<unsaved {MASK}>"

    def __reduce__(self):
        raise TypeError("unsaved plaintext is not picklable")

    def reveal(self):
        return self.value


class _StoredEnvelope(bytes):
    """Envelope bytes as read from the database (so assigned bytes can be told apart as plaintext)."""

    __slots__ = ()


class _SealedDescriptor:
    def __init__(self, field: EncryptedField):
        self.field = field

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        raw = instance.__dict__.get(self.field.attname)
        if not isinstance(raw, _StoredEnvelope):
            return raw
        sealed = SealedValue(raw, owner=instance, field=self.field)
        instance.__dict__[self.field.attname] = sealed
        return sealed

    def __set__(self, instance, value):
        if value is not None and not isinstance(value, SealedValue | _Plaintext | _StoredEnvelope):
            value = _Plaintext(value)
        instance.__dict__[self.field.attname] = value


class EncryptedField(models.BinaryField):
    """Base of the encrypted fields: subclasses define encode()/decode() between Python values and bytes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only)
        setattr(cls, self.attname, _SealedDescriptor(self))

    def encode(self, value) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes):
        raise NotImplementedError

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if isinstance(value, _Plaintext):
            if model_instance.pk is None:
                raise ValueError(f"{model_instance._meta.label}: set the primary key before saving encrypted fields")
            scope = write_scope(model_instance)
            cipher = keyring.active_cipher(scope)
            if cipher.scope != scope.key_scope:  # a lease of another scope would seal values nobody can open
                raise RuntimeError(f"data key {cipher.dek_id} is not of the scope being written")
            envelope = cipher.seal_field(self.encode(value.value), model_label=model_instance._meta.label_lower,
                                         field=self.name, pk=model_instance.pk)
            value = SealedValue(envelope, owner=model_instance, field=self)
            model_instance.__dict__[self.attname] = value
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if isinstance(value, SealedValue):
            value = value.envelope
        elif isinstance(value, _Plaintext):
            raise TypeError("Encrypted values are sealed on Model.save()/bulk_create(); QuerySet.update() cannot seal.")
        elif value is not None and not isinstance(value, _StoredEnvelope):
            raise TypeError("Encrypted fields accept plaintext only through a model instance.")
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value, expression, connection):
        return _StoredEnvelope(value) if value is not None else None

    def to_python(self, value):
        return value

    def value_to_string(self, obj):
        return MASK  # serializers (dumpdata) never see ciphertext or plaintext

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted: only `isnull` lookups are possible "
                f"(not `{lookup_name}`). Filter on unencrypted metadata instead."
            )
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        raise FieldError(f"{self.model._meta.label}.{self.name} is encrypted and cannot be transformed.")

    def check(self, **kwargs):
        return [*super().check(**kwargs), *self._check_encryption()]

    def _check_encryption(self):
        errors = []
        where = f"{self.model._meta.label}.{self.name}"
        for attr, code, what in (
            ("_unique", "E001", "unique"),
            ("db_index", "E002", "db_index"),
            ("primary_key", "E003", "primary_key"),
        ):
            if getattr(self, attr, False):
                errors.append(checks.Error(
                    f"{where}: an encrypted field cannot be {what}; its ciphertext is random.",
                    obj=self, id=f"encryption_keys.{code}",
                ))
        if not callable(getattr(self.model, "encryption_scope", None)):
            errors.append(checks.Error(
                f"{where}: the model must define encryption_scope() returning an EncryptionScope.",
                obj=self, id="encryption_keys.E004",
            ))
        if not isinstance(self.model._meta.pk, models.UUIDField) or self.model._meta.pk.default is models.NOT_PROVIDED:
            errors.append(checks.Error(
                f"{where}: models with encrypted fields need a UUID primary key with a default (it is in the AAD).",
                obj=self, id="encryption_keys.E005",
            ))
        return errors


def write_scope(instance) -> keyring.EncryptionScope:
    """The row's scope plus, for writes only, the KMS key its model asks new data keys to be wrapped with."""
    scope = instance.encryption_scope()
    choose = getattr(instance, "encryption_wrapping_key", None)
    arn = choose() if choose is not None else None
    return dataclasses.replace(scope, wrapping_key_ref=arn) if arn else scope


class EncryptedTextField(EncryptedField):
    def encode(self, value) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"{self.name} holds text, got {type(value).__name__}")
        return value.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8")


# json.dumps with these options would build a new encoder for every value (a batch seals hundreds).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class EncryptedJSONField(EncryptedField):
    def encode(self, value) -> bytes:
        return _JSON.encode(value).encode("utf-8")

    def decode(self, data: bytes):
        return json.loads(data)


class EncryptedBinaryField(EncryptedField):
    def encode(self, value) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"{self.name} holds bytes, got {type(value).__name__}")
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data
