"""Key lifecycle: replacing a key by re-wrapping data keys, rotating and shredding data keys, upgrading
v1 envelopes to v2 (reseal).

    job = replace_key(organization=org, region="us", new_key_ref=arn, actor=user)

The names are resolved lazily: `encryption_keys.models` imports `lifecycle.models` while Django loads
models, and the services below need the models loaded.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "replace_key": "replace",
    "resume_rewrap": "replace",
    "KeyReplacementError": "replace",
    "KeyVerificationFailed": "replace",
    "KeyNeedsConfirmation": "replace",
    "rewrap_data_keys": "rewrap",
    "RewrapInterrupted": "rewrap",
    "retire_data_keys": "rotate",
    "reencrypt_scope": "rotate",
    "reseal_values": "reseal",
    "shred_data_keys": "shred",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
