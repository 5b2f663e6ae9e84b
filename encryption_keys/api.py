"""Konnect-compatible CMEK API: GET /cmeks, GET|PUT|DELETE /cmeks/default (one key per organization and region),
and the envelope materials, POST /materials/encryption and /materials/decryption (encryption_keys.materials).

The region is the URL's (`/api/{region}/v0/`); the organization and user come from the personal access token.
PUT runs the same verification checklist as the Link key form; a failed check is a 400 with `invalid_parameters`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from django.http import Http404
from django.views.decorators.cache import never_cache
from ninja import Field, Header, Path, Router, Schema, Status
from ninja.decorators import decorate_view
from pydantic import WithJsonSchema

from encryption_keys import materials, selectors, services
from encryption_keys.envelope import ERROR_CODES, ErrorCode
from encryption_keys.models import EncryptionKey
from encryption_keys.providers import InvalidKeyRef, provider_for
from encryption_keys.verification import Checklist
from konnect_admin.api import (
    PAGE_AFTER,
    PAGE_BEFORE,
    PAGE_SIZE,
    PersonalAccessTokenAuth,
    SystemAccountAccessTokenAuth,
    api_region,
)
from konnect_admin.models import SystemAccountAccessToken
from konnect_admin.permissions import Action, can
from konnect_admin.problems import Problem, invalid_parameter, problem_response

router = Router(tags=["CMEK"], auth=[PersonalAccessTokenAuth(), SystemAccountAccessTokenAuth()])

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# Documented as Kong's enum; any other id stays a 404 problem (not a 400), as the provider's import expects.
CmekId = Annotated[str, WithJsonSchema({"type": "string", "enum": ["default"], "default": "default"})]
CMEK_ID = Path(..., description="Id of the CMEK")
FILTER = {"name": "filter", "in": "query", "required": False, "style": "deepObject",
          "description": "Filter CMEKs returned in the response: `filter[name]` (or `filter[name][eq]`) for an exact "
                         "name, `filter[name][contains]` for part of it.",
          "schema": {"type": "object", "properties": {"name": {"oneOf": [
              {"type": "string"},
              {"type": "object", "properties": {"contains": {"type": "string"}}, "required": ["contains"]},
          ]}}}}


class CMEK(Schema):
    id: str
    key_arn: str = Field(description="The ARN of the KMS key to use for encryption; empty for a key of another "
                         "key service (see key_ref).")
    key_ref: str = Field(description="Extension: the linked key's reference in any key service this installation "
                         "accepts (an AWS KMS key ARN, or an OpenBao / Vault Transit reference "
                         "transit+https://<host>:<port>/<mount>/keys/<name>).")
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class CursorMetaPage(Schema):
    first: str
    next: str | None
    previous: str | None
    size: int


class CursorMeta(Schema):
    page: CursorMetaPage


class ListCMEKs(Schema):
    data: list[CMEK]
    meta: CursorMeta


class PutCMEKBody(Schema):
    key_arn: str = Field(max_length=2048, description="The ARN of the KMS key to use for encryption (Kong's field); "
                         "may be empty when key_ref is given.")
    key_ref: str | None = Field(None, max_length=2048, description="Extension: the key's reference in another key "
                                "service, e.g. transit+https://bao.example.com:8200/transit/keys/konnect; wins "
                                "over key_arn, which must then be empty or the same.")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    description: str = Field("", max_length=1000, pattern=r"^[^\x00]*$")


def _cmek(key: EncryptionKey) -> dict:
    aws = key_provider_name(key.key_ref) == "aws"
    return {"id": EncryptionKey.API_ID, "key_arn": key.key_ref if aws else "", "key_ref": key.key_ref,
            "name": key.name, "description": key.description, "created_at": key.created_at,
            "updated_at": key.updated_at}


def key_provider_name(key_ref: str) -> str:
    try:
        return provider_for(key_ref).name
    except InvalidKeyRef:
        return ""


def _reference(payload: PutCMEKBody) -> tuple[str, str]:
    """(the key reference, the field it came from); ValueError when key_arn and key_ref disagree."""
    key_ref, key_arn = (payload.key_ref or "").strip(), payload.key_arn.strip()
    if not key_ref:
        return key_arn, "key_arn"
    if key_arn and key_arn != key_ref:
        raise ValueError("Send the key's reference once: in key_ref, with key_arn empty (or the same text).")
    return key_ref, "key_ref"


def _require_default(cmek_id: str) -> None:
    if cmek_id != EncryptionKey.API_ID:
        raise Http404(f"No CMEK {cmek_id!r}: the only CMEK id is 'default'.")


def _query_problem(field: str, reason: str, rule: str = "invalid"):
    return problem_response(status=400, detail="The request is invalid.",
                            invalid_parameters=[invalid_parameter(field, reason, rule=rule, source="query")])


def _cursor(key: EncryptionKey) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": str(key.pk)}).encode()).decode()


def _cursor_id(text: str) -> uuid.UUID:
    try:
        data = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (binascii.Error, ValueError):  # ValueError covers bad JSON and bad UTF-8
        raise ValueError(text) from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValueError(text)
    return uuid.UUID(data["id"])


@router.get("/cmeks", response={200: ListCMEKs, 400: Problem, 401: Problem, 403: Problem},
            operation_id="list-cmeks", summary="List CMEKs",
            openapi_extra={"parameters": [PAGE_SIZE, PAGE_AFTER, PAGE_BEFORE, FILTER]})
def list_cmeks(request):
    """The organization's CMEK of this region (at most one, `default`), with cursor pagination."""
    query = request.GET
    page_size, page_after, page_before = query.get("page[size]"), query.get("page[after]"), query.get("page[before]")
    filter_name, filter_name_eq = query.get("filter[name]"), query.get("filter[name][eq]")
    filter_name_contains = query.get("filter[name][contains]")
    size = DEFAULT_PAGE_SIZE
    if page_size:
        try:
            size = int(page_size)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            return _query_problem("page[size]", f"must be an integer from 1 to {MAX_PAGE_SIZE}", rule="is_integer")
    filters = {"filter[name]": filter_name, "filter[name][eq]": filter_name_eq,
               "filter[name][contains]": filter_name_contains}
    for field, value in filters.items():
        if value and "\x00" in value:
            return _query_problem(field, "must not contain NUL characters", rule="is_string")
    keys = selectors.key_list(user=request.user, organization=request.organization).filter(region=api_region(request))
    if filter_name or filter_name_eq:
        keys = keys.filter(name=filter_name or filter_name_eq)
    if filter_name_contains:
        keys = keys.filter(name__contains=filter_name_contains)
    try:
        after = _cursor_id(page_after) if page_after else None
        before = _cursor_id(page_before) if page_before else None
    except ValueError:
        return _query_problem("page[after]" if page_after else "page[before]", "is not a valid cursor")
    keys = keys.order_by("id")
    if before is not None:
        window = list(keys.filter(id__lt=before).order_by("-id")[: size + 1])
        has_previous, has_next = len(window) > size, True
        items = list(reversed(window[:size]))
    else:
        window = list((keys.filter(id__gt=after) if after else keys)[: size + 1])
        has_next, has_previous = len(window) > size, after is not None and keys.filter(id__lte=after).exists()
        items = window[:size]
    kept = {"page[size]": size, **{k: v for k, v in request.GET.items() if k.startswith("filter[")}}

    def link(**cursor) -> str:
        return f"{request.path}?{urlencode({**kept, **cursor})}"

    page = {
        "first": link(),
        "next": link(**{"page[after]": _cursor(items[-1])}) if has_next and items else None,
        "previous": link(**{"page[before]": _cursor(items[0])}) if has_previous and items else None,
        "size": size,
    }
    return Status(200, {"data": [_cmek(key) for key in items], "meta": {"page": page}})


@router.get("/cmeks/{cmekId}", response={200: CMEK, 401: Problem, 403: Problem, 404: Problem},
            operation_id="get-cmek", summary="Get a CMEK")
def get_cmek(request, cmekId: CmekId = CMEK_ID):  # noqa: N803 - the spec's parameter name
    _require_default(cmekId)
    key = selectors.key_for_region(user=request.user, organization=request.organization, region=api_region(request))
    if key is None:
        raise Http404("No CMEK is linked in this region.")
    return Status(200, _cmek(key))


def _verification_problem(checklist: Checklist, field: str = "key_arn"):
    if checklist.kms_unreachable:
        facts = ERROR_CODES[ErrorCode.KMS_UNAVAILABLE]
        service = "AWS KMS" if field == "key_arn" else "The key service"
        return problem_response(status=facts.http_status, detail=f"{service} could not be reached to verify the key; "
                                "try again.", code=ErrorCode.KMS_UNAVAILABLE.value,
                                headers={"Retry-After": str(facts.retry_after)})
    params = [
        invalid_parameter(field, f"{check.title}: {check.explanation} {check.fix}".strip(),
                          rule="is_arn" if check.id == "arn_syntax" else "invalid")
        for check in checklist.failures
    ]
    titles = ", ".join(check.title for check in checklist.failures)
    return problem_response(status=400, detail=f"The key failed verification: {titles}.", invalid_parameters=params)


def _replace(request, key: EncryptionKey, payload: PutCMEKBody, reference: str, field: str):
    service = services.key_replacement()
    if service is None:
        return problem_response(status=409, code="replacement_unavailable", detail=(
            "A different key is linked in this region and key replacement is not available on this server. "
            "Unlink the current key (DELETE) before linking another one."))
    replace_key, errors = service
    try:
        replace_key(organization=request.organization, region=key.region, new_key_ref=reference,
                    name=payload.name, description=payload.description, actor=request.user)
    except errors as error:
        checklist = getattr(error, "checklist", None)
        if checklist is not None:
            return _verification_problem(checklist, field)
        return problem_response(status=409, detail=str(error), code=getattr(error, "code", "replacement_refused"))
    return Status(200, _cmek(EncryptionKey.objects.get(pk=key.pk)))


@router.put("/cmeks/{cmekId}", response={200: CMEK, 400: Problem, 401: Problem, 403: Problem, 404: Problem,
                                         409: Problem, 503: Problem},
            operation_id="put-cmek", summary="Replace a CMEK")
def put_cmek(request, payload: PutCMEKBody, cmekId: CmekId = CMEK_ID):  # noqa: N803
    """Link the region's key (verified like the Link key form), rename it, or replace it with a new ARN."""
    _require_default(cmekId)
    organization = request.organization
    key = selectors.key_for_region(user=request.user, organization=organization, region=api_region(request),
                                   action=Action.KEY_MANAGE)
    try:
        reference, field = _reference(payload)
    except ValueError as conflict:
        return problem_response(status=400, detail="The request is invalid.", invalid_parameters=[
            invalid_parameter("key_ref", str(conflict), rule="invalid", source="body")])
    if key is not None and reference != key.key_ref:
        return _replace(request, key, payload, reference, field)
    try:
        if key is None:
            key = services.link_key(organization=organization, region=api_region(request), key_ref=reference,
                                    name=payload.name, description=payload.description, actor=request.user).key
        else:
            key = services.key_update(key=key, name=payload.name, description=payload.description, actor=request.user)
    except services.KeyVerificationFailed as failure:
        return _verification_problem(failure.checklist, field)
    except services.KeyAlreadyLinked as error:
        return problem_response(status=409, detail=str(error), code="already_linked")
    except services.KeyInUse as error:
        return problem_response(status=409, detail=str(error), code=error.code)
    return Status(200, _cmek(key))


@router.delete("/cmeks/{cmekId}", response={204: None, 401: Problem, 403: Problem, 404: Problem},
               operation_id="delete-cmek", summary="Delete a CMEK")
def delete_cmek(request, cmekId: CmekId = CMEK_ID):  # noqa: N803
    """Unlink: new data goes back under the platform key; data keys wrapped by this key stay so."""
    _require_default(cmekId)
    key = selectors.key_for_region(user=request.user, organization=request.organization, region=api_region(request),
                                   action=Action.KEY_MANAGE)
    if key is None:
        raise Http404("No CMEK is linked in this region.")
    services.unlink_key(key=key, actor=request.user)
    return Status(204, None)


# --- envelope materials ------------------------------------------------------------------------------------


class EncryptionMaterial(Schema):
    encrypted_data_key: str
    plaintext_data_key: str


class DecryptionMaterial(Schema):
    plaintext_data_key: str


class DecryptionMaterialRequest(Schema):
    encrypted_data_key: str = Field(max_length=16384)


def _materials_refusal(request):
    """None when the caller may have envelope materials: a system account's token, with the Envelope Materials
    role; else the 403 problem. Then one call counted against the organization's budget (429 past it)."""
    request.body  # noqa: B018 - an oversized body is a 413 here too (api.py), though encryption takes none
    if not isinstance(request.auth, SystemAccountAccessToken) or not can(
        request.user, Action.ENVELOPE_MATERIALS, request.organization
    ):
        return problem_response(status=403, detail=(
            "Envelope materials are only for system accounts holding the Envelope Materials role."))
    try:
        materials.rate_limit(organization=request.organization)
    except materials.RateLimited as limited:
        return problem_response(status=429, headers={"Retry-After": str(limited.retry_after)}, detail=(
            f"This organization asked for envelope materials more than {limited.limit} times in "
            f"{limited.window} seconds; retry after {limited.retry_after} seconds."))
    except materials.RateLimitUnavailable:
        return problem_response(status=503, headers={"Retry-After": "5"},
                                detail="Envelope materials are unavailable for a moment; try again.")
    return None


def _materials_problem(refused: materials.MaterialsRefused):
    extra = {"choices": [EncryptionKey.API_ID]} if refused.rule == "enum" else {}
    return problem_response(status=refused.status, detail=refused.detail, invalid_parameters=[
        invalid_parameter(refused.field, refused.detail, rule=refused.rule, source=refused.source, **extra)])


MATERIALS_ERRORS = {400: Problem, 401: Problem, 403: Problem, 409: Problem, 429: Problem, 503: Problem}


@router.post("/materials/encryption", response={201: EncryptionMaterial, **MATERIALS_ERRORS},
             operation_id="create-encryption-material",
             summary="Create encryption material", tags=["Envelope Encryption"])
@decorate_view(never_cache)
def create_encryption_material(request, cmek_id: str = Header("default", alias="X-Konnect-CMEK-Id")):
    """A fresh data key, wrapped under the organization's CMEK of this region: keep `encrypted_data_key` with the
    data, use `plaintext_data_key` and throw it away. System accounts with the Envelope Materials role only."""
    refusal = _materials_refusal(request)
    if refusal is not None:
        return refusal
    try:
        material = materials.encryption_material(organization=request.organization, region=api_region(request),
                                                 cmek_id=cmek_id)
    except materials.MaterialsRefused as refused:
        return _materials_problem(refused)
    return Status(201, material)


@router.post("/materials/decryption", response={201: DecryptionMaterial, **MATERIALS_ERRORS},
             operation_id="create-decryption-material",
             summary="Create decryption material", tags=["Envelope Encryption"])
@decorate_view(never_cache)
def create_decryption_material(request, payload: DecryptionMaterialRequest):
    """The plaintext of a data key from /materials/encryption of this organization and region; a key wrapped for
    another organization is refused (400). System accounts with the Envelope Materials role only."""
    refusal = _materials_refusal(request)
    if refusal is not None:
        return refusal
    try:
        material = materials.decryption_material(organization=request.organization, region=api_region(request),
                                                 encrypted_data_key=payload.encrypted_data_key)
    except materials.MaterialsRefused as refused:
        return _materials_problem(refused)
    return Status(201, material)
