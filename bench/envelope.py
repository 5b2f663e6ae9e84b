"""Encryption core: encrypt + reveal of one 4 KiB text field value with a warm key cache.

Four contenders, timed in alternating rounds of one run (see ``bench.measure_rounds``):

- plaintext — encode to bytes and decode back: the floor every contender pays;
- the Konnect envelope v2 — per value exactly what ``encryption_keys.fields`` does once the DEK is
  cached: ``DataKeyCache.get`` and ``DataKeyCipher.seal_field`` (the v2 ``aad_for``, bound to the tenant and
  scope) on write; ``peek_dek_id``, ``DataKeyCache.get`` checked against the row's scope, and
  ``DataKeyCipher.open_field`` (the scope check, then ``aad_for`` and the decryption) on read. The
  Django-side work around it (descriptor, lease bookkeeping, ``sync_generation``, computing the row's
  ``encryption_scope()``) is left out, as the Django field dispatch is left out of the Fernet baseline;
- django-encrypted-model-fields — what its ``EncryptedTextField`` does per value: ``get_db_prep_save``
  stores ``encrypt_str(value).decode("utf-8")`` and ``to_python`` reads ``decrypt_str(stored)``
  (MultiFernet over one static key, built by the library from ``settings.FIELD_ENCRYPTION_KEY``);
- the AWS Encryption SDK — ``EncryptionSDKClient.encrypt/decrypt`` through a
  ``CachingCryptoMaterialsManager`` over a ``RawMasterKey`` (static AES-256 wrapping key, no KMS), suite
  ``AES_256_GCM_HKDF_SHA512_COMMIT_KEY``, policy ``REQUIRE_ENCRYPT_REQUIRE_DECRYPT``.

Both caches are checked to have stayed warm through the timed rounds; a cold run is an error, not a figure.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata
import os
import statistics
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bench import Contender, figure, measure_rounds, median_rate, median_ratio, progress

NAME = "envelope"
VALUE_SIZE = 4096
MODEL_LABEL = "debugger.payloadcapture"
FIELD = "request_body"
THROUGHPUT_CHART = "4 KiB field value: encrypt + reveal round trips per second (warm key cache)"

FULL = {"rounds": 21, "batch_seconds": 0.2}
QUICK = {"rounds": 3, "batch_seconds": 0.01}

TARGET_VS_FERNET = 5.0
TARGET_VS_AWS_SDK = 20.0
TARGET_OVERHEAD_BYTES = 48


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """How one contender writes a text value for storage and reads it back."""

    key: str
    label: str
    seal: Callable[[str], bytes | str]
    reveal: Callable[[bytes | str], str]

    def stored_size(self, value: str) -> int:
        stored = self.seal(value)
        return len(stored.encode("utf-8") if isinstance(stored, str) else stored)

    def contender(self, value: str) -> Contender:
        seal, reveal = self.seal, self.reveal
        return Contender(self.key, self.label, lambda: reveal(seal(value)))


def run(*, quick: bool) -> dict:
    params = QUICK if quick else FULL
    value = _field_value()
    konnect, konnect_cache = _konnect_envelope()
    aws_sdk, aws_sdk_backing = _aws_encryption_sdk()
    codecs = [_plaintext(), konnect, _fernet_field(), aws_sdk]
    for codec in codecs:
        if codec.reveal(codec.seal(value)) != value:
            raise RuntimeError(f"{codec.label} does not round-trip the benchmark value")

    progress(f"envelope: {len(codecs)} contenders, {params['rounds']} rounds of ~{params['batch_seconds']}s batches")
    samples = measure_rounds([codec.contender(value) for codec in codecs], **params)

    warm = {"konnect_cache_misses": konnect_cache.stats()["misses"], "aws_sdk_backing_cmm_calls": aws_sdk_backing.calls}
    if warm["konnect_cache_misses"] or warm["aws_sdk_backing_cmm_calls"] > 2:  # one encrypt + one decrypt fill
        raise RuntimeError(f"a key cache went cold during the timed rounds: {warm}")

    return {
        "name": NAME,
        "description": f"encrypt + reveal of one {VALUE_SIZE}-byte text field value, warm key cache",
        "figures": [
            *_throughput_figures(codecs, samples),
            *_storage_figures(codecs, value),
        ],
        "parameters": {"value_bytes": VALUE_SIZE, **params},
        "versions": _versions(),
        "warm_cache_check": warm,
        "notes": [
            "Ratios are medians of per-round ratios; contenders alternate within each round. "
            + _ratio_spread(samples),
            "The Konnect AAD (v2) binds each value to organization, region, purpose, scope, model, field "
            "and row pk. The AWS Encryption SDK's encryption context here names only org and purpose: "
            "putting the row pk in it would change the materials-cache key per row and defeat the cache.",
            "Fernet values are stored as text (base64), as django-encrypted-model-fields does.",
        ],
        "samples": samples,
    }


def _field_value() -> str:
    """4096 ASCII characters (so 4096 bytes in UTF-8) of random text."""
    return base64.b64encode(os.urandom(VALUE_SIZE))[:VALUE_SIZE].decode("ascii")


# --- the contenders ------------------------------------------------------------------------------------


def _plaintext() -> FieldCodec:
    return FieldCodec(
        "plaintext",
        "plaintext (encode/decode only)",
        seal=lambda value: value.encode("utf-8"),
        reveal=lambda stored: stored.decode("utf-8"),
    )


def _konnect_envelope():
    from encryption_keys.envelope import KEY_SIZE, DataKeyCache, DataKeyCipher, KeyScope, peek_dek_id

    cache = DataKeyCache(ttl=3600.0)
    dek_id = uuid.uuid4()
    scope = KeyScope(str(uuid.uuid4()), "us", "debugger.payload", str(uuid.uuid4()))
    cache.put(DataKeyCipher(dek_id, os.urandom(KEY_SIZE), scope=scope),
              wrapping_key_ref="arn:aws:kms:us-west-2:0:key/bench")
    pk = uuid.uuid4()

    def seal(value: str) -> bytes:
        cipher = cache.get(dek_id)
        return cipher.seal_field(value.encode("utf-8"), model_label=MODEL_LABEL, field=FIELD, pk=pk)

    def reveal(envelope: bytes) -> str:
        cipher = cache.get(peek_dek_id(envelope), scope=scope)
        return cipher.open_field(envelope, scope=scope, model_label=MODEL_LABEL, field=FIELD, pk=pk).decode("utf-8")

    return FieldCodec("konnect", "Konnect envelope v2", seal, reveal), cache


def _fernet_field() -> FieldCodec:
    from cryptography.fernet import Fernet

    library = _import_encrypted_model_fields(Fernet.generate_key().decode("ascii"))
    encrypt_str, decrypt_str = library.encrypt_str, library.decrypt_str
    return FieldCodec(
        "fernet",
        "django-encrypted-model-fields (Fernet)",
        seal=lambda value: encrypt_str(str(value)).decode("utf-8"),
        reveal=lambda stored: decrypt_str(stored),
    )


def _import_encrypted_model_fields(key: str):
    """The library reads ``settings.FIELD_ENCRYPTION_KEY`` once, when ``encrypted_model_fields.fields`` is imported.

    Existing Django settings (pytest-django, DJANGO_SETTINGS_MODULE) are kept and only overridden while
    importing; a bare interpreter gets minimal settings holding just the key.
    """
    module_name = "encrypted_model_fields.fields"
    if module_name in sys.modules:
        return sys.modules[module_name]
    from django.conf import settings

    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        settings.configure(FIELD_ENCRYPTION_KEY=key)
        return importlib.import_module(module_name)
    from django.test import override_settings

    with override_settings(FIELD_ENCRYPTION_KEY=key):
        return importlib.import_module(module_name)


def _aws_encryption_sdk():
    import aws_encryption_sdk
    from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
    from aws_encryption_sdk.identifiers import (
        Algorithm,
        CommitmentPolicy,
        EncryptionKeyType,
        WrappingAlgorithm,
    )
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKey
    from aws_encryption_sdk.materials_managers.caching import CachingCryptoMaterialsManager
    from aws_encryption_sdk.materials_managers.default import DefaultCryptoMaterialsManager

    class CountingMaterialsManager(DefaultCryptoMaterialsManager):
        """The cache's backing manager, counting how often the cache had to ask it."""

        calls = 0

        def get_encryption_materials(self, request):
            self.calls += 1
            return super().get_encryption_materials(request)

        def decrypt_materials(self, request):
            self.calls += 1
            return super().decrypt_materials(request)

    wrapping_key = RawMasterKey(
        provider_id="konnect-bench",
        key_id=b"static-wrapping-key",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=os.urandom(32),
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    backing = CountingMaterialsManager(master_key_provider=wrapping_key)
    materials = CachingCryptoMaterialsManager(
        backing_materials_manager=backing, cache=LocalCryptoMaterialsCache(capacity=16), max_age=3600.0
    )
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    context = {"konnect:org": str(uuid.uuid4()), "konnect:purpose": "debugger.payload"}
    suite = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY

    def seal(value: str) -> bytes:
        message, _header = client.encrypt(
            source=value.encode("utf-8"), materials_manager=materials, algorithm=suite, encryption_context=context
        )
        return message

    def reveal(message: bytes) -> str:
        plaintext, _header = client.decrypt(source=message, materials_manager=materials)
        return plaintext.decode("utf-8")

    return FieldCodec("aws_sdk", "AWS Encryption SDK (caching CMM)", seal, reveal), backing


# --- figures -------------------------------------------------------------------------------------------


def _throughput_figures(codecs: list[FieldCodec], samples: list[dict[str, float]]) -> list[dict]:
    labels = {codec.key: codec.label for codec in codecs}
    figures = [
        figure(
            f"{codec.label}: round trips/s",
            median_rate(samples, codec.key),
            "ops/s",
            chart_group=None if codec.key == "plaintext" else THROUGHPUT_CHART,
        )
        for codec in codecs
    ]
    figures += [
        figure(
            f"{codec.label}: µs added per round trip over plaintext",
            _median_added_microseconds(samples, codec.key),
            "µs",
        )
        for codec in codecs
        if codec.key != "plaintext"
    ]
    for rival, target in (("fernet", TARGET_VS_FERNET), ("aws_sdk", TARGET_VS_AWS_SDK)):
        ratio = median_ratio(samples, "konnect", rival)
        figures.append(
            figure(
                f"{labels['konnect']} throughput ÷ {labels[rival]}",
                ratio,
                "×",
                target=f"≥ {target:g}×",
                met=ratio >= target,
            )
        )
    return figures


def _ratio_spread(samples: list[dict[str, float]]) -> str:
    spreads = []
    for rival, label in (("fernet", "Fernet"), ("aws_sdk", "AWS Encryption SDK")):
        ratios = [row["konnect"] / row[rival] for row in samples]
        spreads.append(f"÷ {label} {min(ratios):.2f}–{max(ratios):.2f}×")
    return f"Per-round range of Konnect {', '.join(spreads)}."


def _median_added_microseconds(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(1e6 / row[key] - 1e6 / row["plaintext"] for row in samples)


def _storage_figures(codecs: list[FieldCodec], value: str) -> list[dict]:
    figures = []
    for codec in codecs:
        if codec.key == "plaintext":
            continue
        stored = codec.stored_size(value)
        overhead = stored - VALUE_SIZE
        figures.append(figure(f"{codec.label}: stored bytes per 4 KiB value", stored, "bytes"))
        if codec.key == "konnect":
            target = {"target": f"≤ {TARGET_OVERHEAD_BYTES} bytes", "met": overhead <= TARGET_OVERHEAD_BYTES}
        else:
            target = {}
        figures.append(figure(f"{codec.label}: overhead per value", overhead, "bytes", **target))
    return figures


def _versions() -> dict[str, str]:
    packages = ("cryptography", "django-encrypted-model-fields", "aws-encryption-sdk")
    return {package: importlib.metadata.version(package) for package in packages}
