"""How revealed payloads and decryption errors are shown: pretty JSON, text, hex previews, error cards.

Nothing here decrypts; it shapes values already revealed, and explains errors by their stable code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings

from encryption_keys.envelope import DecryptionError, ErrorCode
from encryption_keys.models import DataKey, EncryptionKey

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


# --- decryption-error cards ---------------------------------------------------------------------------------

_ACTIONS = {
    ErrorCode.KEY_DISABLED: "Re-enable the key in AWS KMS (console: Key actions → Enable, or aws kms enable-key). "
                            "The data is readable again within {retry} seconds; nothing is lost.",
    ErrorCode.KEY_PENDING_DELETION: "Cancel the scheduled deletion in AWS KMS (aws kms cancel-key-deletion) and "
                                    "re-enable the key before the deletion date; after it, the data is gone for good.",
    ErrorCode.KEY_ACCESS_DENIED: "Restore the platform's statement in the key policy (Organization settings → "
                                 "Encryption keys shows the statement to copy).",
    ErrorCode.KEY_NOT_FOUND: "Nothing can bring this data back. Delete the session to clean up.",
    ErrorCode.KMS_UNAVAILABLE: "Nothing: this page retries by itself. If it lasts, check the AWS Health Dashboard "
                               "for KMS in the key's region.",
    ErrorCode.DATA_KEY_SHREDDED: "Nothing: the data was destroyed on purpose (session deleted or retention "
                                 "expired) and cannot be recovered.",
    ErrorCode.INTEGRITY: "Nothing can restore this value. If you see this on many values, contact support.",
}


@dataclass
class ErrorCard:
    code: str
    title: str
    message: str
    action: str
    retryable: bool
    key_arn: str = ""
    key_label: str = ""
    deletion_date: datetime | None = None


def error_card(error: DecryptionError, *, organization_id, data_key_id=None) -> ErrorCard:
    """What happened, which key, and what the customer can do — never any ciphertext."""
    key_arn = error.key_arn or ""
    if not key_arn and data_key_id is not None and error.code is not ErrorCode.DATA_KEY_SHREDDED:
        key_arn = DataKey.objects.filter(pk=data_key_id).values_list("wrapping_key_arn", flat=True).first() or ""
    return ErrorCard(
        code=error.code.value,
        title=error.title,
        message=error.message,
        action=_ACTIONS[error.code].format(retry=max(settings.DATAKEY_FAILURE_TTL, 1)),
        retryable=error.retryable,
        key_arn=key_arn,
        key_label=_key_label(key_arn, organization_id),
        deletion_date=error.deletion_date,
    )


def _key_label(key_arn: str, organization_id) -> str:
    if not key_arn:
        return ""
    name = EncryptionKey.objects.filter(organization_id=organization_id, key_arn=key_arn).values_list(
        "name", flat=True).first()
    if name:
        return f"your customer-managed key “{name}”"
    if key_arn in settings.PLATFORM_KMS_KEYS.values():
        return "the platform key of this region"
    return "a key no longer linked to this organization"
