"""`application/problem+json` bodies in Konnect's shape: status, title, type, instance, detail, invalid_parameters."""

from __future__ import annotations

import json
import secrets
from http import HTTPStatus

from django.http import HttpResponse
from ninja import Schema
from ninja.errors import HttpError

PROBLEM_CONTENT_TYPE = "application/problem+json"
# The JSON APIs live under this path (urls.py): every error there, even one no API view saw, is problem+json.
API_PATH_PREFIX = "/api/"

# pydantic error type → Konnect's InvalidRules
_RULES = {
    "missing": "required",
    "string_type": "is_string",
    "int_type": "is_integer",
    "int_parsing": "is_integer",
    "bool_type": "is_boolean",
    "bool_parsing": "is_boolean",
    "dict_type": "is_object",
    "model_type": "is_object",
    "list_type": "is_array",
    "uuid_parsing": "is_uuid",
    "uuid_type": "is_uuid",
    "datetime_parsing": "is_date_time",
    "float_parsing": "is_number",
    "extra_forbidden": "unknown_property",
    "string_pattern_mismatch": "matches_regex",
    "json_invalid": "invalid",
}
_SOURCES = {"body": "body", "query": "query", "path": "path", "header": "header"}


class Problem(Schema):
    """An error answer's model in `response={…}`: served documents show it as application/problem+json in Kong's
    shape (konnect_admin.api.KonnectAPI), whatever model an app declares."""

    status: int
    title: str
    type: str | None = None
    instance: str
    detail: str


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PATH_PREFIX)


def problem_body(*, status: int, detail: str, title: str | None = None, **extra) -> dict:
    body = {
        "status": status,
        "title": title or _phrase(status),
        "type": f"https://httpstatuses.com/{status}",
        "instance": f"kong:trace:{secrets.randbelow(10**19)}",
        "detail": detail,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    if status == 400 and not body.get("invalid_parameters"):
        # Kong's BadRequestError requires at least one entry, whatever made the request bad.
        body["invalid_parameters"] = [invalid_parameter("body", detail)]
    return body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(*, status: int, detail: str, headers: dict | None = None, **extra) -> HttpResponse:
    response = HttpResponse(
        json.dumps(problem_body(status=status, detail=detail, **extra)), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class BadRequest(HttpError):
    """A 400 that names what is wrong: answered as problem+json with these `invalid_parameters`."""

    def __init__(self, detail: str, *invalid_parameters: dict):
        super().__init__(400, detail)
        self.invalid_parameters = list(invalid_parameters)


def invalid_parameter(field: str, reason: str, *, rule: str | None = "invalid", source: str = "body", **extra) -> dict:
    return {"field": field, "rule": rule, "source": source, "reason": reason, **extra}


def invalid_parameters_from(errors: list[dict]) -> list[dict]:
    """pydantic/ninja validation errors → Konnect `invalid_parameters` (unique entries, at least one)."""
    params = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        source = _SOURCES.get(location[0], "body") if location else "body"
        field = ".".join(part for part in location[1:] if part not in ("payload", "data")) or (location[-1] if location else "body")
        kind = error.get("type", "")
        ctx = error.get("ctx") or {}
        if kind in ("string_too_short", "too_short"):
            entry = {"field": field, "rule": "min_length", "minimum": int(ctx.get("min_length", 0)), "source": source,
                     "reason": f"must have at least {ctx.get('min_length', 0)} characters"}
        elif kind in ("string_too_long", "too_long"):
            entry = {"field": field, "rule": "max_length", "maximum": int(ctx.get("max_length", 0)), "source": source,
                     "reason": f"must not have more than {ctx.get('max_length', 0)} characters"}
        elif kind in ("enum", "literal_error"):
            choices = ctx.get("expected", "")
            entry = {"field": field, "rule": "enum", "source": source, "reason": error.get("msg", "is not allowed"),
                     "choices": [c.strip(" '") for c in str(choices).replace(" or ", ",").split(",") if c.strip(" '")] or ["?"]}
        else:
            entry = invalid_parameter(field, _reason(error), rule=_RULES.get(kind, "invalid"), source=source)
        if entry not in params:
            params.append(entry)
    return params or [invalid_parameter("body", "is invalid")]


def _reason(error: dict) -> str:
    if error.get("type") == "missing":
        return "is a required field"
    return str(error.get("msg", "is invalid"))


def is_json_response(response) -> bool:
    content_type = (response.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


_DETAILS = {
    400: "The request is invalid.",
    401: "Invalid credentials: send a valid token as 'Authorization: Bearer <token>'.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    406: "This API only answers with application/json or application/problem+json.",
    413: "The request body is too large.",
    415: "This API only supports requests with `Content-Type: application/json`",
    429: "Too many requests; try again later.",
    500: "Something went wrong on our side.",
    503: "The service is temporarily unavailable; try again.",
}
_KEPT_HEADERS = ("Allow", "Retry-After", "Cache-Control", "WWW-Authenticate")


def as_problem(response):
    """An error response that is not JSON (Django's HTML pages, ninja's text/html 405) → the same status as
    problem+json, keeping the headers a client acts on (`Allow`, `Retry-After`). Anything else is returned as is."""
    if response.status_code < 400 or is_json_response(response):
        return response
    status = response.status_code
    try:
        detail = _DETAILS.get(status) or HTTPStatus(status).description or HTTPStatus(status).phrase
    except ValueError:  # a status http.HTTPStatus does not know
        detail = "The request failed."
    if status == 405:
        detail = f"Method not allowed here; allowed: {response.get('Allow', '')}."
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    return problem_response(status=status, detail=detail, headers=headers)
