"""Kong vault references of Konnect Config Stores: `{vault://<prefix>/<key>}`.

The prefix names a Vault entity of the control plane; the key is everything after the first `/`
(a config store key may itself contain `/`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vault.models import (
    CONFIG_STORE_KEY_PATTERN,
    CONFIG_STORE_KEY_RULE,
    CONTROL_CHARACTERS,
    PREFIX_PATTERN,
    SECRET_KEY_MAX,
)

REFERENCE_MAX = 1024
_REFERENCE = re.compile(r"^\{vault://(?P<prefix>[^/{}]+)/(?P<key>[^{}]+)\}$")
_PREFIX = re.compile(PREFIX_PATTERN)
_KEY = re.compile(CONFIG_STORE_KEY_PATTERN)


class InvalidReference(ValueError):
    """The text is not a `{vault://<prefix>/<key>}` reference; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VaultReference:
    prefix: str
    key: str

    def __str__(self):
        return f"{{vault://{self.prefix}/{self.key}}}"


def parse_reference(text: str) -> VaultReference:
    """`{vault://payments/stripe-key}` → VaultReference("payments", "stripe-key"); raises InvalidReference."""
    if not isinstance(text, str) or not text:
        raise InvalidReference("A reference is a non-empty string.")
    if len(text) > REFERENCE_MAX:
        raise InvalidReference(f"A reference is at most {REFERENCE_MAX} characters.")
    if CONTROL_CHARACTERS.search(text):
        raise InvalidReference("A reference cannot contain control characters.")
    match = _REFERENCE.match(text)
    if match is None:
        raise InvalidReference("Write references as {vault://<prefix>/<key>}.")
    prefix, key = match["prefix"], match["key"]
    if not _PREFIX.match(prefix):
        raise InvalidReference("The vault prefix has lowercase letters, digits and dashes, starting with a letter.")
    if len(key) > SECRET_KEY_MAX:
        raise InvalidReference(f"A config store key is at most {SECRET_KEY_MAX} characters.")
    if not _KEY.match(key):  # no secret can have such a key: say so rather than "not found"
        raise InvalidReference(f"The config store key is not valid. {CONFIG_STORE_KEY_RULE}")
    return VaultReference(prefix=prefix, key=key)
