"""The Transit key reference: ``transit+https://<host>:<port>/<mount>/keys/<name>``.

``<mount>`` is the path the Transit engine is mounted at (``transit``, or nested such as ``teams/payments/transit``);
``<name>`` the key's name. ``transit+http://`` is accepted for loopback servers only (a dev server). The
normalised form has the scheme and host in lower case, the port spelled out (443 when omitted after https) and
no trailing slash; the key's identity is the server address, the mount and the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from encryption_keys.providers.base import InvalidKeyRef
from encryption_keys.providers.transit.servers import normalise_address

PREFIX = "transit+"
EXAMPLE = "transit+https://bao.example.com:8200/transit/keys/konnect"
# Transit's own rule for key names (framework.GenericNameRegex), and path segments of a mount.
_NAME = re.compile(r"\w(?:[\w.-]*\w)?", re.ASCII)
_SEGMENT = re.compile(r"[\w.-]+", re.ASCII)


@dataclass(frozen=True)
class TransitRef:
    address: str  # https://host:port
    mount: str
    name: str

    @property
    def text(self) -> str:
        return f"{PREFIX}{self.address}/{self.mount}/keys/{self.name}"

    @property
    def identity(self) -> str:
        return f"transit:{self.address}/{self.mount}/keys/{self.name}"


def parse_transit_ref(text: str) -> TransitRef:
    raw = (text or "").strip()
    if not raw.lower().startswith(PREFIX):
        raise InvalidKeyRef(f"A Transit key reference starts with transit+https://, e.g. {EXAMPLE}.")
    rest = raw[len(PREFIX):]
    scheme, sep, after = rest.partition("://")
    if not sep:
        raise InvalidKeyRef(f"A Transit key reference looks like {EXAMPLE}.")
    authority, slash, path = after.partition("/")
    if not slash:
        raise InvalidKeyRef(f"The reference names no key: add /<mount>/keys/<name>, e.g. {EXAMPLE}.")
    if "%" in raw or "?" in after or "#" in after or "\\" in after:
        raise InvalidKeyRef("The reference must not contain %, ?, # or \\ characters.")
    try:
        address = normalise_address(f"{scheme}://{authority}")
    except ValueError as invalid:
        raise InvalidKeyRef(f"Not a usable Transit server address: {invalid}.") from None
    mount, keys, name = path.rstrip("/").rpartition("/keys/")
    if not keys or not mount:
        raise InvalidKeyRef(f"The path must be /<mount>/keys/<name>, e.g. {EXAMPLE}.")
    segments = mount.split("/")
    if any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments):
        raise InvalidKeyRef(f"“{mount}” is not a Transit mount path (letters, digits, -, _ and . between slashes).")
    if not _NAME.fullmatch(name):
        raise InvalidKeyRef(f"“{name}” is not a Transit key name (letters, digits, -, _ and .).")
    return TransitRef(address=address, mount=mount, name=name)
