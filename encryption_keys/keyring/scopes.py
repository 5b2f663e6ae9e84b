"""Who a row's encrypted values belong to: the scope a model's `encryption_scope()` returns, the scope of a
DataKey row, and the scope reference of a control plane's debug session or config store."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from encryption_keys.envelope import KeyScope
from encryption_keys.models import DataKey


@dataclass(frozen=True, slots=True)
class EncryptionScope:
    """Who a row's encrypted values belong to (what a model's `encryption_scope()` returns).

    Reads use only the identity — organization, region, purpose, scope reference (`key_scope`) — which a
    model computes from the row and its parents without a query when they are loaded. `wrapping_key_ref`
    is a write-time choice (see `fields.write_scope`) and never part of the identity.
    """

    organization_id: uuid.UUID
    region: str
    purpose: str
    scope_ref: str
    # An explicit wrapping key for new DEKs of this scope, instead of wrapping_key_ref() (the org's CMEK if
    # linked, else the platform key): vault secrets of a control plane created before the CMEK was linked.
    wrapping_key_ref: str | None = None

    @property
    def key_scope(self) -> KeyScope:
        return _key_scope(self.organization_id, self.region, self.purpose, self.scope_ref)


def control_plane_scope_ref(control_plane_id: object, owner_id: object) -> str:
    """The scope reference of a control plane's debug session or config store: ``<control plane id>/<owner id>``.

    The control plane is part of it because permissions and data planes are per control plane: a session
    or store re-parented to a sibling control plane of the same organization and region is another scope,
    so its values read `integrity` there. Every query that finds such a scope's data keys builds the
    reference here (docs/envelope.md).
    """
    return f"{control_plane_id}/{owner_id}"


def data_key_scope(row: DataKey) -> KeyScope:
    """The scope a DataKey row belongs to."""
    return _key_scope(row.organization_id, row.region, row.purpose, row.scope_ref)


@functools.lru_cache(maxsize=4096)
def _key_scope(organization_id, region, purpose, scope_ref) -> KeyScope:
    return KeyScope.of(organization_id, region, purpose, scope_ref)
