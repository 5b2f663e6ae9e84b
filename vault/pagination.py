"""Konnect's cursor pagination: `page[size]`, `page[after]` (an opaque cursor) and `meta.page` with `next`.

Keyset pagination: the cursor holds the sort key of the last item of a page, so pages stay stable while rows
are added or removed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from django.http import HttpRequest

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class PageParameterError(ValueError):
    def __init__(self, invalid_parameter: dict):
        super().__init__(invalid_parameter["reason"])
        self.invalid_parameter = invalid_parameter


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: dict | None


def page_request(request: HttpRequest) -> PageRequest:
    """Parse `page[size]` and `page[after]`; raises PageParameterError (→ 400 invalid_parameters)."""
    raw_size = request.GET.get("page[size]", "")
    size = DEFAULT_PAGE_SIZE
    if raw_size != "":
        try:
            size = int(raw_size)
        except ValueError:
            raise PageParameterError({"field": "page[size]", "rule": "is_integer", "source": "query",
                                      "reason": "must be an integer"}) from None
        if size < 1:
            raise PageParameterError({"field": "page[size]", "rule": "min", "minimum": 1, "source": "query",
                                      "reason": "must be at least 1"})
        if size > MAX_PAGE_SIZE:
            raise PageParameterError({"field": "page[size]", "rule": "max", "maximum": MAX_PAGE_SIZE,
                                      "source": "query", "reason": f"must be at most {MAX_PAGE_SIZE}"})
    raw_after = request.GET.get("page[after]", "")
    return PageRequest(size=size, after=decode_cursor(raw_after) if raw_after else None)


def encode_cursor(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> dict:
    try:
        position = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict):
        raise PageParameterError({"field": "page[after]", "rule": "invalid", "source": "query",
                                  "reason": "is not a cursor returned by this API"})
    return position


def page_of(request: HttpRequest, page: PageRequest, rows: list, position) -> tuple[list, dict]:
    """`rows` were fetched with one extra item: (items of this page, meta) with `next` when there is more."""
    items, more = rows[: page.size], len(rows) > page.size
    next_url = None
    if more:
        next_url = f"{request.path}?page[size]={page.size}&page[after]={encode_cursor(position(items[-1]))}"
    return items, {"page": {"size": page.size, "next": next_url, "previous": None}}
