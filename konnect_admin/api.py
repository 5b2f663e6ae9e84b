"""The JSON APIs (django-ninja), wire-compatible with Konnect's: bearer tokens and problem+json errors.

    /api/{region}/v0/   CMEK and blob API            (encryption_keys.api, debugger.api) as Kong's docs spec lists it
    /api/{region}/v1/   CMEK API again (the same router: Kong's Terraform provider calls /v1/cmeks),
                        data-plane API: debugger ingest, vault secret resolution
    /api/{region}/v2/   Config Store API             (vault.api)

Each app adds its router here by import path, so this module is the one place that lists them.
Every answer under /api/ is JSON: `api_urls` turns ninja's own non-JSON errors (its text/html 405) into
problem+json, and `api_not_found` answers any path no API matches (wrong version, trailing slash, …).
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Annotated

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError
from ninja.security import HttpBearer
from pydantic import WithJsonSchema

from encryption_keys.envelope import EnvelopeError
from konnect_admin import tokens
from konnect_admin.problems import PROBLEM_CONTENT_TYPE, as_problem, invalid_parameters_from, problem_response
from konnect_admin.services import LastOrganizationAdmin

logger = logging.getLogger(__name__)


# Auth class name → the security scheme name Kong's specs use (the served documents name schemes this way).
SECURITY_SCHEMES: dict[str, str] = {}


class KonnectBearer(HttpBearer):
    """A bearer auth whose OpenAPI security scheme carries Kong's name (`security_scheme_name`), not the class name.
    (ninja copies every `openapi_*` attribute into the scheme.)"""

    security_scheme_name = ""
    openapi_bearerFormat = "Token"  # noqa: N815 - the OpenAPI field's name

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        SECURITY_SCHEMES[cls.__name__] = cls.security_scheme_name


class PersonalAccessTokenAuth(KonnectBearer):
    """`Authorization: Bearer kpat_…` → request.user and request.organization of the token."""

    security_scheme_name = "personalAccessToken"
    openapi_description = "A personal access token (`Authorization: Bearer kpat_…`), created on the Access tokens page."

    def authenticate(self, request: HttpRequest, token: str):
        access_token = tokens.personal_access_token_authenticate(token)
        if access_token is None:
            return None
        request.user = access_token.user
        request.organization = access_token.organization
        return access_token


class SystemAccountAccessTokenAuth(KonnectBearer):
    """`Authorization: Bearer spat_…` → request.user (the system account's User) and request.organization.

    Routers list it where Kong's specs accept `systemAccountAccessToken`; the operations then run exactly as for
    a personal access token, with the system account's teams and roles."""

    security_scheme_name = "systemAccountAccessToken"

    def authenticate(self, request: HttpRequest, token: str):
        from konnect_admin import system_accounts

        access_token = system_accounts.system_account_token_authenticate(token)
        if access_token is None:
            return None
        request.user = access_token.system_account.user
        request.organization = access_token.system_account.organization
        request.system_account = access_token.system_account
        return access_token


class DataPlaneTokenAuth(KonnectBearer):
    """`Authorization: Bearer kdpt_…` → request.control_plane of the data plane."""

    security_scheme_name = "dataPlaneToken"
    openapi_description = "A data-plane token (`Authorization: Bearer kdpt_…`) of one control plane (not in Kong's specs)."

    def authenticate(self, request: HttpRequest, token: str):
        data_plane_token = tokens.data_plane_token_authenticate(token)
        if data_plane_token is None:
            return None
        request.control_plane = data_plane_token.control_plane
        request.organization = data_plane_token.control_plane.organization
        return data_plane_token


def api_region(request: HttpRequest) -> str:
    """The Konnect region of the URL (`/api/{region}/…`)."""
    return request.resolver_match.kwargs["region"]


def _problem(status: int, detail: str, **extra) -> HttpResponse:
    return problem_response(status=status, detail=detail, **extra)


def install_problem_handlers(api: NinjaAPI) -> NinjaAPI:
    @api.exception_handler(ValidationError)
    def validation(request, exc):
        return _problem(400, "The request is invalid.", invalid_parameters=invalid_parameters_from(exc.errors))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return _problem(401, "Invalid credentials: send a valid token as 'Authorization: Bearer <token>'.")

    @api.exception_handler(AuthorizationError)
    def unauthorized(request, exc):
        return _problem(403, "You do not have permission to perform this action.")

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return _problem(403, "You do not have permission to perform this action.")

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return _problem(404, "Not found.")

    @api.exception_handler(ObjectDoesNotExist)
    def object_not_found(request, exc):
        return _problem(404, "Not found.")

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        return _problem(exc.status_code, str(exc.message), invalid_parameters=getattr(exc, "invalid_parameters", None))

    @api.exception_handler(RequestDataTooBig)
    def too_large(request, exc):
        # Django refuses to read a body above DATA_UPLOAD_MAX_MEMORY_SIZE; ninja reads it to parse the payload.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _problem(413, f"The request body is larger than the limit of {limit} bytes.")

    @api.exception_handler(EnvelopeError)
    def encryption(request, exc: EnvelopeError):
        # A write that could not get a data key stored nothing; a read that cannot decrypt says why. 503 and
        # Retry-After only for kms_unavailable: a disabled or deleted key is a 409 nobody should retry blindly.
        from encryption_keys.error_reporting import problem_for

        return problem_for(exc)

    @api.exception_handler(LastOrganizationAdmin)
    def last_organization_admin(request, exc: LastOrganizationAdmin):
        # Any operation that would leave the organization without an active Organization Admin.
        return _problem(409, str(exc), code=exc.code, title="Last Organization Admin")

    @api.exception_handler(Exception)
    def unexpected(request, exc):
        reference = uuid.uuid4().hex
        logger.error("API error %s on %s %s: %s", reference, request.method, request.path, type(exc).__name__,
                     exc_info=exc)
        return _problem(500, f"Something went wrong on our side (reference {reference}).")

    return api


# Kong's server list (descriptions as in its specs); the document served in a region lists that region first.
REGIONS = {
    "us": "United-States Production region",
    "eu": "Europe Production region",
    "au": "Australia Production region",
    "me": "Middle-East Production region",
    "in": "India Production region",
    "sg": "Singapore Production region",
}
PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "An RFC 9457 problem in Kong's shape (BaseError; a 400 adds `invalid_parameters`).",
    "type": "object",
    "properties": {
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "type": {"type": "string"},
        "instance": {"type": "string"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "invalid_parameters": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["field", "reason"],
            "properties": {"field": {"type": "string"}, "rule": {"type": ["string", "null"]},
                           "source": {"type": "string"}, "reason": {"type": "string"},
                           "minimum": {"type": "integer"}, "maximum": {"type": "integer"}},
        }},
    },
    "required": ["status", "title", "instance", "detail"],
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

# Kong's shared parameters (documented with `openapi_extra`; the views parse them from request.GET themselves, so
# their refusals are Kong's 400s with `invalid_parameters`, and an empty value means "the default", as Kong allows).
PAGE_SIZE = {"name": "page[size]", "in": "query", "required": False, "allowEmptyValue": True,
             "description": "The maximum number of items to include per page. The last page of a collection may "
                            "include fewer items.", "schema": {"type": "integer", "example": 10}}
PAGE_AFTER = {"name": "page[after]", "in": "query", "required": False, "allowEmptyValue": True,
              "description": "Request the next page of data, starting with the item after this parameter.",
              "schema": {"type": "string"}}
PAGE_BEFORE = {"name": "page[before]", "in": "query", "required": False, "allowEmptyValue": True,
               "description": "Request the next page of data, starting with the item before this parameter.",
               "schema": {"type": "string"}}
# A path id documented as Kong's `format: uuid` but parsed by the view: a malformed id is a 404, like an unknown one.
UuidText = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]


class KonnectAPI(NinjaAPI):
    """A NinjaAPI whose OpenAPI document reads like Kong's: a server per region (`/api/{region}/vN`), paths relative
    to it, security schemes under Kong's names, and every error response documented as application/problem+json."""

    def __init__(self, *, url_version: str, **kwargs):
        super().__init__(**kwargs)
        self.url_version = url_version

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        document = super().get_openapi_schema(path_prefix="" if path_prefix is None else path_prefix,
                                              path_params=path_params)
        region = (path_params or {}).get("region", "us")
        document["servers"] = [
            {"url": f"/api/{name}/{self.url_version}", "description": description}
            for name, description in sorted(REGIONS.items(), key=lambda item: item[0] != region)
        ]
        components = document.setdefault("components", {})
        schemes = {}
        for class_name, scheme in components.pop("securitySchemes", {}).items():
            name = SECURITY_SCHEMES.get(class_name, class_name)
            schemes[name] = scheme
        if schemes:
            components["securitySchemes"] = schemes
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path_item in document["paths"].values():
            for method, operation in path_item.items():
                if method not in HTTP_METHODS:
                    continue
                for status, response in operation["responses"].items():
                    if int(status) >= 400:
                        response["content"] = problem
                if "security" in operation:
                    named = []
                    for requirement in operation["security"]:
                        requirement = {SECURITY_SCHEMES.get(k, k): v for k, v in requirement.items()}
                        if requirement not in named:
                            named.append(requirement)
                    operation["security"] = named
        return document


def make_api(*, title: str, version: str, namespace: str, url_version: str, description: str = "") -> NinjaAPI:
    api = KonnectAPI(
        url_version=url_version,
        title=title,
        version=version,
        description=description,
        urls_namespace=namespace,
        openapi_url="/openapi.json",
        docs_url=None,
    )
    return install_problem_handlers(api)


api_v0 = make_api(title="Konnect Admin CMEK and Blob API", version="0.0.1", namespace="api-v0", url_version="v0")
api_v1 = make_api(title="Konnect Admin data-plane API", version="1.0.0", namespace="api-v1", url_version="v1",
                  description="Debugger ingest and vault secret resolution for gateway data planes.")
api_v2 = make_api(title="Konnect Admin Config Store API", version="2.0.0", namespace="api-v2", url_version="v2")

ROUTERS = [
    (api_v0, "", "encryption_keys.api.router"),
    (api_v0, "", "debugger.api.blob_router"),
    (api_v1, "", "encryption_keys.api.router"),
    (api_v1, "/debugger", "debugger.api.ingest_router"),
    (api_v1, "/vault", "vault.api.resolve_router"),
    (api_v2, "", "vault.api.router"),
]
for api, prefix, router in ROUTERS:
    api.add_router(prefix, router)



def _problem_json(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        return as_problem(view(request, *args, **kwargs))

    return wrapper


def api_urls(api: NinjaAPI):
    """`api.urls` with every view answering errors as problem+json (ninja answers an unknown method with a
    text/html 405, which Kong's generated clients reject as an unknown content type)."""
    patterns, app_name, namespace = api.urls

    def wrap(items):
        for item in items:
            if isinstance(item, URLPattern):
                item.callback = _problem_json(item.callback)
            elif isinstance(item, URLResolver):
                wrap(item.url_patterns)

    wrap(patterns)
    return patterns, app_name, namespace


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Any path under /api/ that no API serves, for every method: a 404 problem, never the site's HTML page."""
    return _problem(404, "No API operation at this path; each version lists its operations in its OpenAPI "
                         "document (/api/{region}/v0, v1 or v2/openapi.json).")


api_not_found.organization_required = False  # an API answer, not a page: no organization switcher applies

__all__ = ["PROBLEM_CONTENT_TYPE", "api_v0", "api_v1", "api_v2", "DataPlaneTokenAuth", "PersonalAccessTokenAuth",
           "SystemAccountAccessTokenAuth"]
