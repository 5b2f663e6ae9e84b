"""Config Store API, wire-compatible with Konnect's (`/api/{region}/v2/`), and the data-plane resolve endpoint
(`/api/{region}/v1/vault/resolve`). Secret values are write-only: only `resolve` ever returns one."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import register_converter
from ninja import Query, Router, Status
from ninja.decorators import decorate_view

from encryption_keys.error_reporting import answers_key_errors, problem_for
from konnect_admin.api import (
    PAGE_AFTER,
    PAGE_SIZE,
    DataPlaneTokenAuth,
    PersonalAccessTokenAuth,
    SystemAccountAccessTokenAuth,
    UuidText,
    api_region,
)
from konnect_admin.permissions import Action
from konnect_admin.problems import problem_response
from vault import resolution, selectors, services
from vault.models import ConfigStore
from vault.pagination import PageParameterError, PageRequest, page_of, page_request
from vault.schemas import (
    ConfigStoreList,
    ConfigStoreOut,
    ConfigStoreSecretList,
    ConfigStoreSecretOut,
    CreateConfigStore,
    CreateConfigStoreSecret,
    Problem,
    ResolveRequest,
    ResolveResponse,
    UpdateConfigStore,
    UpdateConfigStoreSecret,
)


class SecretKeyConverter:
    """A secret key in a path: anything, `/` and newlines included (Django's `path` stops at a newline), so every
    key is answered by the API (a 400 or 404 problem), never by the site's HTML 404 page."""

    regex = r"[\s\S]+"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(SecretKeyConverter, "secret_key")
router = Router(tags=["Config Stores"], auth=[PersonalAccessTokenAuth(), SystemAccountAccessTokenAuth()])
resolve_router = Router(tags=["Vault resolution"], auth=DataPlaneTokenAuth())

STORES = "/control-planes/{controlPlaneId}/config-stores"
STORE = STORES + "/{configStoreId}"
SECRETS = STORE + "/secrets"
SECRET = SECRETS + "/{secret_key:key}"
READ_ERRORS = {401: Problem, 403: Problem, 404: Problem}
LIST_ERRORS = {400: Problem, **READ_ERRORS}  # a bad page[size] or cursor
DELETE_ERRORS = LIST_ERRORS  # deleting a non-empty store without force
WRITE_ERRORS = {400: Problem, **READ_ERRORS, 415: Problem, 503: Problem}  # 503: no data key (KMS unreachable)
PAGINATION = {"parameters": [PAGE_SIZE, PAGE_AFTER]}
# A secret write refused by the organization's key: 409 when someone must fix the key, 503 + Retry-After when
# it clears by itself (kms_unavailable).
SECRET_WRITE_ERRORS = {**WRITE_ERRORS, 409: Problem}
_RULES = {"min_length": "min_length", "max_length": "max_length", "required": "required", "blank": "required",
          "null": "required", "unique": "invalid", "invalid": "invalid"}


def json_only(run):
    """415 for a body that is not `application/json`, as Konnect answers."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.content_type != "application/json":
            return problem_response(status=415, detail="This API only supports requests with `Content-Type: application/json`")
        return run(request, *args, **kwargs)

    return wrapper


def _bad_request(invalid_parameters: list[dict], detail: str = "Invalid Parameters") -> HttpResponse:
    return problem_response(status=400, title="Invalid Request", detail=detail, invalid_parameters=invalid_parameters)


def _invalid_parameters(error: ValidationError) -> list[dict]:
    params = []
    for field, errors in error.error_dict.items():
        for item in errors:
            rule = _RULES.get(item.code, "invalid")
            entry = {"field": field, "rule": rule, "source": "body", "reason": next(iter(item))}
            if rule == "min_length":
                entry["minimum"] = int(item.params["limit_value"])
            elif rule == "max_length":
                entry["maximum"] = int(item.params["limit_value"])
            if entry not in params:
                params.append(entry)
    return params or [{"field": "body", "rule": "invalid", "source": "body", "reason": "is invalid"}]


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Http404("Not found.") from None


def _control_plane(request, control_plane_id: str, action: Action):
    return selectors.control_plane_for_vault(user=request.user, organization=request.organization,
                                             pk=_uuid(control_plane_id), action=action, region=api_region(request))


def _store(request, control_plane_id: str, store_id: str, action: Action) -> ConfigStore:
    control_plane = _control_plane(request, control_plane_id, action)
    return selectors.config_store_get(user=request.user, control_plane=control_plane, pk=_uuid(store_id))


def _bad_cursor() -> PageParameterError:
    return PageParameterError({"field": "page[after]", "rule": "invalid", "source": "query",
                               "reason": "is not a cursor returned by this API"})


def _position(page: PageRequest, *keys: str) -> tuple | None:
    if page.after is None:
        return None
    if not all(isinstance(page.after.get(key), str) for key in keys):
        raise _bad_cursor()
    return tuple(page.after[key] for key in keys)


def _store_position(page: PageRequest) -> tuple[datetime, uuid.UUID] | None:
    position = _position(page, "t", "id")
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position[0]), uuid.UUID(position[1])
    except ValueError:
        raise _bad_cursor() from None


# --- config stores -----------------------------------------------------------------------------------------


@router.get(STORES, response={200: ConfigStoreList, **LIST_ERRORS}, operation_id="list-config-stores",
            summary="List all config stores for a control plane", openapi_extra=PAGINATION)
def list_config_stores(request, controlPlaneId: UuidText):  # noqa: N803 - Konnect's parameter names
    control_plane = _control_plane(request, controlPlaneId, Action.VAULT_VIEW)
    try:
        page = page_request(request)
        position = _store_position(page)
    except PageParameterError as error:
        return _bad_request([error.invalid_parameter])
    queryset = selectors.config_store_list(user=request.user, control_plane=control_plane).order_by("created_at", "id")
    if position is not None:
        queryset = queryset.filter(Q(created_at__gt=position[0]) | Q(created_at=position[0], id__gt=position[1]))
    items, meta = page_of(request, page, list(queryset[: page.size + 1]),
                          lambda store: {"t": store.created_at.isoformat(), "id": str(store.pk)})
    return Status(200, {"data": items, "meta": meta})


@router.post(STORES, response={201: ConfigStoreOut, **WRITE_ERRORS}, operation_id="create-config-store",
             summary="Create Config Store")
@decorate_view(json_only)
def create_config_store(request, controlPlaneId: UuidText, payload: CreateConfigStore):  # noqa: N803
    control_plane = _control_plane(request, controlPlaneId, Action.VAULT_ADMIN)
    try:
        store = services.config_store_create(actor=request.user, control_plane=control_plane, name=payload.name)
    except ValidationError as error:
        return _bad_request(_invalid_parameters(error))
    return Status(201, store)


@router.get(STORE, response={200: ConfigStoreOut, **READ_ERRORS}, operation_id="get-config-store",
            summary="Get a Config Store")
def get_config_store(request, controlPlaneId: UuidText, configStoreId: UuidText):  # noqa: N803
    return Status(200, _store(request, controlPlaneId, configStoreId, Action.VAULT_VIEW))


@router.put(STORE, response={200: ConfigStoreOut, **WRITE_ERRORS}, operation_id="update-config-store",
            summary="Update an individual Config Store")
@decorate_view(json_only)
def update_config_store(request, controlPlaneId: UuidText, configStoreId: UuidText,  # noqa: N803
                        payload: UpdateConfigStore):
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_ADMIN)
    if payload.name is None:
        return Status(200, store)
    try:
        store = services.config_store_update(actor=request.user, store=store, name=payload.name)
    except ValidationError as error:
        return _bad_request(_invalid_parameters(error))
    return Status(200, store)


@router.delete(STORE, response={204: None, **DELETE_ERRORS}, operation_id="delete-config-store",
               summary="Delete Config Store")
def delete_config_store(request, controlPlaneId: UuidText, configStoreId: UuidText,  # noqa: N803
                        force: Literal["true", "false"] = Query("false")):
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_ADMIN)
    try:
        services.config_store_delete(actor=request.user, store=store, force=force == "true")
    except services.ConfigStoreNotEmpty as error:
        return _bad_request([{"field": "force", "rule": "required", "reason": str(error), "source": "query"}])
    return Status(204, None)


# --- secrets -----------------------------------------------------------------------------------------------


@router.get(SECRETS, response={200: ConfigStoreSecretList, **LIST_ERRORS}, operation_id="list-config-store-secrets",
            summary="List Config Store Secrets", tags=["Config Store Secrets"],
            openapi_extra=PAGINATION)
def list_config_store_secrets(request, controlPlaneId: UuidText, configStoreId: UuidText):  # noqa: N803
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_VIEW)
    try:
        page = page_request(request)
        position = _position(page, "k")
    except PageParameterError as error:
        return _bad_request([error.invalid_parameter])
    queryset = selectors.secret_list(user=request.user, store=store).only("key", "created_at", "updated_at")
    if position is not None:
        queryset = queryset.filter(key__gt=position[0])
    items, meta = page_of(request, page, list(queryset[: page.size + 1]), lambda secret: {"k": secret.key})
    return Status(200, {"data": items, "meta": meta})


@router.post(SECRETS, response={201: ConfigStoreSecretOut, **SECRET_WRITE_ERRORS}, operation_id="create-config-store-secret",
             summary="Create Config Store Secret", tags=["Config Store Secrets"])
@decorate_view(json_only)
@answers_key_errors
def create_config_store_secret(request, controlPlaneId: UuidText, configStoreId: UuidText,  # noqa: N803
                               payload: CreateConfigStoreSecret):
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_ADMIN)
    try:
        secret = services.secret_create(actor=request.user, store=store, key=payload.key, value=payload.value)
    except ValidationError as error:
        return _bad_request(_invalid_parameters(error))
    return Status(201, secret)


@router.get(SECRET, response={200: ConfigStoreSecretOut, **READ_ERRORS}, operation_id="get-config-store-secret",
            summary="Get a Config Store Secret", tags=["Config Store Secrets"],
            description="Returns the secret entity for the Config Store. Secret values once stored cannot be retrieved.")
def get_config_store_secret(request, controlPlaneId: UuidText, configStoreId: UuidText, key: str):  # noqa: N803
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_VIEW)
    return Status(200, selectors.secret_get(user=request.user, store=store, key=key))


@router.put(SECRET, response={200: ConfigStoreSecretOut, 201: ConfigStoreSecretOut, **SECRET_WRITE_ERRORS},
            operation_id="update-config-store-secret", summary="Update Config Store Secret",
            tags=["Config Store Secrets"], description="Replaces the value of a secret, or creates it (201).")
@decorate_view(json_only)
@answers_key_errors
def update_config_store_secret(request, controlPlaneId: UuidText, configStoreId: UuidText, key: str,  # noqa: N803
                               payload: UpdateConfigStoreSecret):
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_ADMIN)
    try:
        secret, created = services.secret_put(actor=request.user, store=store, key=key, value=payload.value)
    except ValidationError as error:
        return _bad_request(_invalid_parameters(error))
    return Status(201 if created else 200, secret)


@router.delete(SECRET, response={204: None, **READ_ERRORS}, operation_id="delete-config-store-secret",
               summary="Delete Config Store Secret", tags=["Config Store Secrets"])
def delete_config_store_secret(request, controlPlaneId: UuidText, configStoreId: UuidText, key: str):  # noqa: N803
    store = _store(request, controlPlaneId, configStoreId, Action.VAULT_ADMIN)
    services.secret_delete(actor=request.user, secret=selectors.secret_get(user=request.user, store=store, key=key))
    return Status(204, None)


# --- data-plane resolution ---------------------------------------------------------------------------------

RESOLVE_DESCRIPTION = """\
Resolves `{vault://<prefix>/<key>}` references of the calling data plane's **own** control plane
(prefix → Vault entity → config store → secret). Authenticate with a data-plane token (`Bearer kdpt_…`).
At most 100 references per call; values of one call are decrypted together (one KMS Decrypt per data key).

**200**: one result per reference, in request order: `{"reference", "value"}` when resolved, or
`{"reference", "error": {"code", "title", "detail", "retryable"}}`. Error codes: `invalid_reference`,
`vault_not_found`, `config_store_not_found`, `secret_not_found`, and the key errors `key_disabled`,
`key_pending_deletion`, `key_access_denied`, `key_not_found`, `kms_unavailable`, `data_key_shredded`, `integrity`.

**When every reference fails because of the key** (none failed for another reason), the answer is a
problem+json with the key error's `code` and `retryable` instead: **503** with `Retry-After` when retrying helps
by itself (`kms_unavailable`), **409** without `Retry-After` otherwise (e.g. `key_disabled`: someone must fix the
key first; a client that retried on a timer would retry a deleted key forever).

Every reference asked for is recorded with its outcome (never the value). Answers carrying values have
`Cache-Control: no-store`.
"""


@resolve_router.post("/resolve", response={200: ResolveResponse, 400: Problem, 401: Problem, 404: Problem,
                                            409: Problem, 503: Problem},
                     operation_id="resolve-vault-references", summary="Resolve vault references",
                     description=RESOLVE_DESCRIPTION, exclude_none=True)
def resolve(request, response: HttpResponse, payload: ResolveRequest):
    control_plane = request.control_plane
    if control_plane.region != api_region(request):
        raise Http404("This control plane is in another region.")
    results = resolution.secrets_resolve(control_plane=control_plane, token=request.auth,
                                         references=payload.references)
    response["Cache-Control"] = "no-store"
    if all(result.cause is not None for result in results):
        return problem_for(results[0].cause)
    return Status(200, {"results": [
        {"reference": r.reference, "value": r.value, "error": r.error.as_dict() if r.error else None} for r in results
    ]})

