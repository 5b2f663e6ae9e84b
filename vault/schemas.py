"""Request and response bodies of the Config Store API (Konnect's spec) and of the data-plane resolve endpoint.

Secret values are write-only: they appear in request bodies and in the resolve response, nowhere else.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from ninja import Schema
from pydantic import ConfigDict, Field

from vault.models import SECRET_KEY_MAX, SECRET_VALUE_MAX, STORE_NAME_MAX
from vault.references import REFERENCE_MAX
from vault.resolution import MAX_REFERENCES

StoreName = Annotated[str, Field(min_length=1, max_length=STORE_NAME_MAX)]
SecretValue = Annotated[str, Field(min_length=1, max_length=SECRET_VALUE_MAX, json_schema_extra={"writeOnly": True})]


class Problem(Schema):
    status: int
    title: str
    type: str | None = None
    instance: str
    detail: str
    code: str | None = None
    invalid_parameters: list[dict] | None = None


class CursorMetaPage(Schema):
    size: int
    next: str | None
    previous: str | None


class CursorMeta(Schema):
    page: CursorMetaPage


class ConfigStoreOut(Schema):
    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


class ConfigStoreList(Schema):
    data: list[ConfigStoreOut]
    meta: CursorMeta


class CreateConfigStore(Schema):
    """`name` is optional, as in Kong's spec (Terraform sends `{"name": null}` when none is configured): the store
    is then named `config-store-<first 8 hex digits of its id>`."""

    model_config = ConfigDict(extra="forbid")

    name: StoreName | None = None


class UpdateConfigStore(Schema):
    model_config = ConfigDict(extra="forbid")

    name: StoreName | None = None


class ConfigStoreSecretOut(Schema):
    """A secret as the API shows it: its key and timestamps. The value is never returned."""

    key: str
    created_at: datetime
    updated_at: datetime


class ConfigStoreSecretList(Schema):
    data: list[ConfigStoreSecretOut]
    meta: CursorMeta


class CreateConfigStoreSecret(Schema):
    key: Annotated[str, Field(min_length=1, max_length=SECRET_KEY_MAX)]
    value: SecretValue


class UpdateConfigStoreSecret(Schema):
    value: SecretValue


# --- data-plane resolution ---------------------------------------------------------------------------------

Reference = Annotated[str, Field(min_length=1, max_length=REFERENCE_MAX, examples=["{vault://payments/stripe-key}"])]


class ResolveRequest(Schema):
    references: list[Reference] = Field(min_length=1, max_length=MAX_REFERENCES)


class ResolutionErrorOut(Schema):
    code: str = Field(description="Stable code: key_disabled, kms_unavailable, secret_not_found, …")
    title: str
    detail: str
    retryable: bool = Field(description="True when retrying later can succeed without anyone acting.")


class ResolvedReference(Schema):
    reference: str
    value: str | None = Field(None, description="The plaintext, when resolved.")
    error: ResolutionErrorOut | None = Field(None, description="Why it could not be resolved.")


class ResolveResponse(Schema):
    results: list[ResolvedReference]
