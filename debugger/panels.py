"""How revealed payloads are shown: pretty JSON, text, hex previews.

Nothing here decrypts; it shapes values already revealed. Decryption errors are shown by the shared error card
(`encryption_keys.error_reporting`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PREVIEW_CHARS = 8 * 1024
FULL_CHARS = 1024 * 1024
HEX_PREVIEW_BYTES = 512
HEX_FULL_BYTES = 64 * 1024
PATH_PREVIEW_CHARS = 80


def path_preview(url: str | None) -> str:
    """The path of a URL, without its query string (which may hold credentials), shortened."""
    if not url:
        return ""
    path = urlsplit(url).path or "/"
    return path if len(path) <= PATH_PREVIEW_CHARS else path[: PATH_PREVIEW_CHARS - 1] + "…"


@dataclass
class BodyView:
    kind: str  # json | text | binary | empty | absent
    size: int = 0
    text: str = ""
    hex_rows: list[tuple[str, str, str]] = field(default_factory=list)
    truncated: bool = False


def content_type_of(headers: dict | None) -> str:
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            return (value[0] if isinstance(value, list) and value else str(value)).lower()
    return ""


def body_view(body: bytes | None, *, headers: dict | None, full: bool) -> BodyView:
    if body is None:
        return BodyView(kind="absent")
    if not body:
        return BodyView(kind="empty")
    text = _as_text(body)
    if text is None:
        return _hex_view(body, full=full)
    content_type = content_type_of(headers)
    kind = "text"
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=False)
            kind = "json"
        except ValueError:
            pass
    limit = FULL_CHARS if full else PREVIEW_CHARS
    return BodyView(kind=kind, size=len(body), text=text[:limit], truncated=len(text) > limit)


def _as_text(body: bytes) -> str | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    controls = sum(1 for char in text[:4096] if ord(char) < 32 and char not in "\t\n\r")
    return None if controls > len(text[:4096]) // 100 else text


def _hex_view(body: bytes, *, full: bool) -> BodyView:
    limit = HEX_FULL_BYTES if full else HEX_PREVIEW_BYTES
    rows = []
    for offset in range(0, min(len(body), limit), 16):
        chunk = body[offset:offset + 16]
        ascii_text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        rows.append((f"{offset:08x}", chunk.hex(" "), ascii_text))
    return BodyView(kind="binary", size=len(body), hex_rows=rows, truncated=len(body) > limit)
