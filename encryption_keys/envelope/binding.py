"""What a sealed value is bound to: its data key's scope and its row (the AAD of envelopes v1 and v2).

The exact bytes, a worked example and a known-answer vector are in ``docs/envelope.md``.

- v2 (every new write)::

      b"v2|" org "|" region "|" purpose "|" scope_ref "|" app_label.model "." field "|" pk

  UTF-8; ``org`` and a UUID ``pk`` in their canonical text form (lowercase, hyphenated). A value is
  bound to its tenant and scope as well as to its row: opened under another scope, it fails its tag.
- v1 (legacy, still opened)::

      b"v1|" app_label.model "." field "|" pk

The AAD starts with the version, so an envelope whose version byte was rewritten fails its tag.
Components other than the pk may not contain ``|``, which keeps the encoding unambiguous (the pk is last).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

SEPARATOR = "|"


class _KeyScopeFields(NamedTuple):
    organization: str
    region: str
    purpose: str
    scope_ref: str


class KeyScope(_KeyScopeFields):
    """The identity of a data key: organization, Konnect region, purpose and scope reference.

    A DEK belongs to exactly one; a row expects exactly one (its ``encryption_scope()``). They must be
    equal for the row's values to be opened. Immutable; a tuple underneath, so comparing and hashing are
    cheap on the read path.
    """

    __slots__ = ()

    def __new__(cls, organization: str, region: str, purpose: str, scope_ref: str) -> KeyScope:
        for name, value in (("organization", organization), ("region", region), ("purpose", purpose),
                            ("scope_ref", scope_ref)):
            _check_component(name, value)
        return super().__new__(cls, organization, region, purpose, scope_ref)

    @classmethod
    def of(cls, organization: object, region: object, purpose: object, scope_ref: object) -> KeyScope:
        """Build from database values (a UUID organization id, a TextChoices purpose): all as text."""
        return cls(str(organization), str(region), str(purpose), str(scope_ref))

    def differences(self, other: KeyScope) -> tuple[str, ...]:
        """Names of the components in which ``other`` differs, e.g. ``("organization",)``."""
        return tuple(name for name, mine, theirs in zip(self._fields, self, other, strict=True) if mine != theirs)

    def as_dict(self) -> dict[str, str]:
        return dict(self._asdict())


def aad_for(*, scope: KeyScope, model_label: str, field: str, pk: object) -> bytes:
    """The v2 AAD: ``b"v2|<org>|<region>|<purpose>|<scope_ref>|<app_label.model>.<field>|<pk>"``."""
    if pk is None or pk == "":
        raise ValueError("pk must be set before an encrypted field is sealed or opened")
    return _aad_v2(scope, model_label, field, pk)


def aad_v1(*, model_label: str, field: str, pk: object) -> bytes:
    """The legacy v1 AAD: ``b"v1|<app_label.model>.<field>|<pk>"`` (read only; reseal upgrades it)."""
    if pk is None or pk == "":
        raise ValueError("pk must be set before an encrypted field is sealed or opened")
    return _aad_v1(model_label, field, pk)


def aad_v2_prefix(*, scope: KeyScope, model_label: str, field: str) -> bytes:
    """What the v2 AAD of every row of one field and scope starts with: ``aad_for(...) == prefix + pk_bytes(pk)``.

    For sealing a batch, which would otherwise format the same scope, model and field once per value."""
    return _aad_v2_prefix(scope, model_label, field)


def pk_bytes(pk: object) -> bytes:
    """The row's part of the AAD (v1 and v2): the pk in its text form, UTF-8."""
    if pk is None or pk == "":
        raise ValueError("pk must be set before an encrypted field is sealed or opened")
    return f"{pk}".encode()


@functools.lru_cache(maxsize=256)
def _aad_v2_prefix(scope: KeyScope, model_label: str, field: str) -> bytes:
    _check_component("model_label", model_label)
    _check_component("field", field)
    return f"v2|{scope.organization}|{scope.region}|{scope.purpose}|{scope.scope_ref}|{model_label}.{field}|".encode()


# Memoized: a row's AAD is computed on every seal and open, and formatting a UUID is not free.
@functools.lru_cache(maxsize=4096)
def _aad_v2(scope: KeyScope, model_label: str, field: str, pk: object) -> bytes:
    return _aad_v2_prefix(scope, model_label, field) + f"{pk}".encode()


@functools.lru_cache(maxsize=4096)
def _aad_v1(model_label: str, field: str, pk: object) -> bytes:
    return f"v1|{model_label}.{field}|{pk}".encode()


def _check_component(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be non-empty text, not {value!r}")
    if SEPARATOR in value:
        raise ValueError(f"{name} may not contain {SEPARATOR!r}: {value!r}")
