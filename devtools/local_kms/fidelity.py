"""Fidelity layer: make moto 5.2.5's KMS behave like AWS KMS where Konnect Admin relies on it.

moto is a good emulator but lax exactly where envelope encryption needs to be strict: it encrypts
with disabled keys, wraps data keys under HMAC keys, cannot decrypt multi-Region keys (it truncates
their id in its ciphertext header), shares one MultiRegionConfiguration dict between a primary and
its replicas, ignores Deny statements (except on DescribeKey), never evaluates Allow statements, and
answers some ARN-addressed calls with HTTP 500. This module patches moto's KMS backend and response
classes so that the local KMS server answers like AWS does.

Key policies (the calls Konnect makes: Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, DescribeKey,
GetKeyRotationStatus):

* **The caller.** A ``LocalKmsServer`` is told at start whom its caller stands for
  (``caller_principal``; the test suite and the ``kms_server`` command pass the platform principal,
  ``settings.PLATFORM_KMS_PRINCIPAL``). The caller has no IAM identity policy of its own: like a
  cross-account role, it can use a key only through the key policy. A server told nobody keeps the
  older model: its caller stands for every AWS principal.
* **A principal matches the caller** when it is ``"*"``, ``{"AWS": "*"}`` or the caller's ARN. An
  account principal (``arn:aws:iam::<account>:root`` or the bare account id) delegates to that
  account's IAM policies in AWS: it never *allows* the caller anything, but a Deny naming the
  caller's account applies to it. Service and Federated principals never match.
* **Deny wins**: an applicable Deny statement (principal, action, resource, conditions) →
  ``AccessDeniedException``. A condition this evaluator does not understand makes a Deny apply.
* **Default deny when the policy names a principal.** When an Allow statement of the key policy
  names a specific AWS principal (a role or user ARN — cross-account style, like the statements
  the Link key page shows), the caller may do an action only if an Allow statement whose principal
  matches the caller matches the action and the resource, and all its conditions hold
  (``kms:EncryptionContext:<key>`` with the IAM string operators; a condition this evaluator does
  not understand makes an Allow not apply). Otherwise ``AccessDeniedException`` ("no
  resource-based policy allows …"). A policy that names no such principal — moto's default root
  policy, a policy of account principals and ``"*"`` only — allows every action, as before.
* **The encryption context** is the request's (ReEncrypt: the source context for
  ``kms:ReEncryptFrom``, the destination context for ``kms:ReEncryptTo``). DescribeKey and
  GetKeyRotationStatus carry none, as in AWS: an Allow conditioned on
  ``kms:EncryptionContext:…`` never grants them, which is why the statements handed to customers
  grant them in a statement of their own, without a condition.
* Key administration over HTTP (PutKeyPolicy, EnableKey, ScheduleKeyDeletion, …) is not
  authorized: the caller plays the key's administrator there, as tests and demos need.

Rules:

* Applied ONLY by the local KMS server (``LocalKmsServer.start()``, ``main()``, the ``admin``
  helpers) — never imported by application code paths.
* ``apply()`` is idempotent and refuses (``RuntimeError`` naming the seam) to patch a moto whose
  seams moved: every attribute it patches or relies on is listed in ``PATCH_POINTS``.
* One small function per AWS behaviour; its docstring says which behaviour it restores.

Errors are moto ``JsonRESTError`` subclasses, so they travel as AWS JSON errors (HTTP 400 with
``__type``) and botocore raises ``ClientError`` with the exact AWS error code.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
import json
import logging
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from copy import copy
from dataclasses import dataclass
from typing import Any

import moto
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.kms import models as kms_models
from moto.kms import responses as kms_responses
from moto.kms import utils as kms_utils
from moto.kms.exceptions import InvalidCiphertextException, NotFoundException, ValidationException
from moto.utilities.utils import get_partition

logger = logging.getLogger(__name__)

EXPECTED_MOTO_VERSION = "5.2.5"

_MARKER = "__konnect_fidelity__"
_lock = threading.Lock()
_originals: dict[str, Callable[..., Any]] = {}


# --------------------------------------------------------------------------------------------
# Seams
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seam:
    """One moto attribute the layer patches (``patched=True``) or relies on (``patched=False``).

    ``params`` is the expected parameter list of a callable, or ``None`` when only existence matters.
    """

    path: str
    params: tuple[str, ...] | None = None
    patched: bool = False

    def resolve(self) -> Any:
        """Import the module part of ``path`` and walk the attributes; ``AttributeError`` if gone."""
        parts = self.path.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attr in parts[split:]:
                obj = getattr(obj, attr)
            return obj
        raise AttributeError(self.path)


_B = "moto.kms.models.KmsBackend"
_R = "moto.kms.responses.KmsResponse"
_SELF_KEY = ("self", "key_id")

PATCH_POINTS: tuple[Seam, ...] = (
    # Patched by this layer.
    Seam(
        f"{_B}.create_key",
        ("self", "policy", "key_usage", "key_spec", "description", "tags", "multi_region", "origin"),
        True,
    ),
    Seam(f"{_B}.replicate_key", ("self", "key_id", "replica_region"), True),
    Seam(f"{_B}.decrypt", ("self", "ciphertext_blob", "encryption_context", "key_id"), True),
    Seam(f"{_B}.put_key_policy", ("self", "key_id", "policy"), True),
    Seam(f"{_B}.disable_key", _SELF_KEY, True),
    Seam(f"{_B}.enable_key", _SELF_KEY, True),
    Seam(f"{_B}.cancel_key_deletion", _SELF_KEY, True),
    Seam(f"{_B}.schedule_key_deletion", ("self", "key_id", "pending_window_in_days"), True),
    Seam(f"{_B}.get_key_rotation_status", _SELF_KEY, True),
    Seam(f"{_R}.encrypt", ("self",), True),
    Seam(f"{_R}.decrypt", ("self",), True),
    Seam(f"{_R}.re_encrypt", ("self",), True),
    Seam(f"{_R}.generate_data_key", ("self",), True),
    Seam(f"{_R}.generate_data_key_without_plaintext", ("self",), True),
    Seam(f"{_R}.get_key_rotation_status", ("self",), True),
    Seam(f"{_R}._validate_key_policy", ("self", "key_id", "action"), True),
    Seam(f"{_R}._validate_cmk_id", _SELF_KEY, True),
    # Relied upon, not patched.
    Seam("moto.kms.models.kms_backends"),
    Seam(f"{_B}.any_id_to_key_id", _SELF_KEY),
    Seam(f"{_B}.get_key_id", ("key_id",)),
    Seam(f"{_B}.describe_key", _SELF_KEY),
    Seam(f"{_B}.delete_key", _SELF_KEY),
    Seam(f"{_B}.encrypt", ("self", "key_id", "plaintext", "encryption_context")),
    Seam(
        "moto.kms.models.Key.__init__",
        (
            "self",
            "policy",
            "key_usage",
            "key_spec",
            "description",
            "account_id",
            "region",
            "multi_region",
            "origin",
        ),
    ),
    Seam("moto.kms.models.Key.to_dict", ("self",)),
    Seam("moto.kms.models.Key.generate_default_policy", ("self",)),
    Seam(f"{_R}._get_param", ("self", "param_name", "if_none")),
    Seam(f"{_R}._validate_key_id", _SELF_KEY),
    Seam(f"{_R}.kms_backend"),
    Seam("moto.kms.utils._deserialize_ciphertext_blob", ("ciphertext_blob",)),
    Seam("moto.kms.utils.decrypt", ("master_keys", "ciphertext_blob", "encryption_context")),
    Seam("moto.kms.utils.KEY_ID_LEN"),
    Seam("moto.kms.models.generate_key_id", ("multi_region",), True),
)

#: Attributes of ``moto.kms.models.Key`` instances the layer reads or writes.
KEY_ATTRIBUTES: tuple[str, ...] = (
    "id",
    "arn",
    "account_id",
    "region",
    "policy",
    "key_usage",
    "key_spec",
    "key_state",
    "enabled",
    "deletion_date",
    "creation_date",
    "key_material",
    "key_rotation_status",
    "multi_region",
    "grants",
    "aliases",
    "rotations",
)


def check_seams(seams: Iterable[Seam] | None = None) -> list[str]:
    """One human-readable problem per seam (default ``PATCH_POINTS``) that is missing or changed shape."""
    problems = []
    for seam in PATCH_POINTS if seams is None else seams:
        try:
            target = seam.resolve()
        except AttributeError:
            problems.append(f"moto seam missing: {seam.path}")
            continue
        if seam.params is None:
            continue
        if isinstance(target, property):
            target = target.fget
        target = getattr(target, "__wrapped__", target)
        try:
            actual = tuple(inspect.signature(target).parameters)
        except (TypeError, ValueError):
            problems.append(f"moto seam not callable: {seam.path}")
            continue
        if actual != seam.params:
            problems.append(f"moto seam changed: {seam.path}{actual}, expected {seam.params}")
    return problems


def is_applied() -> bool:
    return getattr(kms_responses.KmsResponse.encrypt, _MARKER, False)


def apply() -> None:
    """Patch moto's KMS so it behaves like AWS KMS (idempotent, thread-safe)."""
    with _lock:
        if is_applied():
            return
        if moto.__version__ != EXPECTED_MOTO_VERSION:
            warnings.warn(
                f"local KMS fidelity layer was written for moto {EXPECTED_MOTO_VERSION}, "
                f"found {moto.__version__}; run tests/devtools/test_local_kms.py",
                RuntimeWarning,
                stacklevel=2,
            )
        problems = check_seams()
        if problems:
            raise RuntimeError(
                "Cannot apply the local KMS fidelity layer, moto's KMS changed: " + "; ".join(problems)
            )
        for owner, name, factory in _PATCHES:
            original = getattr(owner, name)
            _originals[f"{owner.__name__}.{name}"] = original
            patched = factory(original)
            setattr(patched, _MARKER, True)
            setattr(owner, name, patched)


def revert() -> None:
    """Undo ``apply()`` (for tests of the layer itself)."""
    with _lock:
        if not is_applied():
            return
        for owner, name, _factory in _PATCHES:
            setattr(owner, name, _originals.pop(f"{owner.__name__}.{name}"))


# --------------------------------------------------------------------------------------------
# AWS errors moto does not define (or defines without a message)
# --------------------------------------------------------------------------------------------


class _KmsError(JsonRESTError):
    code = 400
    error_type = "KMSInternalException"

    def __init__(self, message: str):
        super().__init__(self.error_type, message)


class DisabledException(_KmsError):
    error_type = "DisabledException"


class KMSInvalidStateException(_KmsError):
    error_type = "KMSInvalidStateException"


class IncorrectKeyException(_KmsError):
    error_type = "IncorrectKeyException"


class InvalidKeyUsageException(_KmsError):
    error_type = "InvalidKeyUsageException"


class AccessDeniedException(_KmsError):
    error_type = "AccessDeniedException"


class UnsupportedOperationException(_KmsError):
    error_type = "UnsupportedOperationException"


class AlreadyExistsException(_KmsError):
    error_type = "AlreadyExistsException"


class MalformedPolicyDocumentException(_KmsError):
    error_type = "MalformedPolicyDocumentException"


# --------------------------------------------------------------------------------------------
# Checks shared by the patches
# --------------------------------------------------------------------------------------------

_CIPHERTEXT_KEY_GONE = (
    "The ciphertext refers to a customer master key that does not exist, "
    "does not exist in this region, or you are not allowed to access."
)


def ensure_key_enabled(key: Any) -> None:
    """AWS: cryptographic operations need an ``Enabled`` key.

    ``Disabled`` → ``DisabledException``; any other state (``PendingDeletion``, ``Unavailable``,
    ``PendingImport``…) → ``KMSInvalidStateException``.
    """
    state = key.key_state
    if state == "Enabled":
        return
    if state == "Disabled":
        raise DisabledException(f"{key.arn} is disabled.")
    if state == "PendingDeletion":
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
    raise KMSInvalidStateException(f"{key.arn} is {state} and cannot be used for this operation.")


def ensure_symmetric_encryption_key(key: Any, operation: str) -> None:
    """AWS: Encrypt/Decrypt/ReEncrypt/GenerateDataKey* with the default algorithm need a
    ``SYMMETRIC_DEFAULT`` key whose usage is ``ENCRYPT_DECRYPT`` → else ``InvalidKeyUsageException``."""
    if key.key_usage != "ENCRYPT_DECRYPT":
        raise InvalidKeyUsageException(
            f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}."
        )
    if key.key_spec != "SYMMETRIC_DEFAULT":
        raise InvalidKeyUsageException(
            f"{key.arn} key spec is {key.key_spec} which is not valid for {operation} "
            "(the local KMS supports SYMMETRIC_DEFAULT only)."
        )


def ensure_authorized(key: Any, action: str, encryption_context: Mapping[str, str] | None) -> None:
    """AWS key-policy evaluation for the caller (see the module docstring): an applicable ``Deny``
    wins; when an Allow statement names a specific principal, only a matching Allow lets the call
    through; otherwise → ``AccessDeniedException``."""
    context = encryption_context or {}
    caller = caller_principal()
    who = caller or f"arn:aws:iam::{key.account_id}:root"
    statements = policy_statements(key.policy)
    for statement in statements:
        if _effect(statement) == "deny" and statement_applies(statement, key.arn, action, context):
            sid = f" (statement {statement['Sid']!r})" if statement.get("Sid") else ""
            raise AccessDeniedException(
                f"User: {who} is not authorized to perform: {action} "
                f"on resource: {key.arn} with an explicit deny in a resource-based policy{sid}"
            )
    allows = [statement for statement in statements if _effect(statement) == "allow"]
    if not any(names_specific_principal(statement) for statement in allows):
        return
    if any(statement_applies(statement, key.arn, action, context, effect="allow") for statement in allows):
        return
    raise AccessDeniedException(
        f"User: {who} is not authorized to perform: {action} on resource: {key.arn} "
        f"because no resource-based policy allows the {action} action"
    )


def ensure_operation_allowed(
    key: Any, action: str, encryption_context: Mapping[str, str] | None, operation: str
) -> None:
    """Authorization (the key policy) first, then key state, then key usage."""
    ensure_authorized(key, action, encryption_context)
    ensure_key_enabled(key)
    ensure_symmetric_encryption_key(key, operation)


def key_for_ciphertext(backend: Any, ciphertext_blob: Any) -> tuple[str, Any]:
    """Find the key that produced a moto ciphertext in this region's backend.

    moto writes the key id into a fixed 36-byte header field (``moto.kms.utils.KEY_ID_LEN``), so a
    multi-Region id (``mrk-`` + 36 chars) is truncated; resolve it by unique prefix. Returns the
    header id (the key moto's ``decrypt`` looks up) and the key. Like AWS, a ciphertext whose key is
    not in this region → ``AccessDeniedException``; garbage → ``InvalidCiphertextException``.
    """
    if not isinstance(ciphertext_blob, bytes | bytearray):
        raise InvalidCiphertextException()
    try:
        header_id = kms_utils._deserialize_ciphertext_blob(bytes(ciphertext_blob)).key_id.rstrip("\x00")
    except Exception as exc:
        raise InvalidCiphertextException() from exc
    key = backend.keys.get(header_id)
    if key is None and header_id.startswith("mrk-"):
        matches = [k for key_id, k in backend.keys.items() if key_id.startswith(header_id)]
        key = matches[0] if len(matches) == 1 else None
    if key is None:
        raise AccessDeniedException(_CIPHERTEXT_KEY_GONE)
    return header_id, key


def _incorrect_key() -> IncorrectKeyException:
    return IncorrectKeyException(
        "The key ID in the request does not identify the KMS key that was used to encrypt the "
        "ciphertext. The KeyId in a Decrypt request and the SourceKeyId in a ReEncrypt request must "
        "identify the same KMS key that was used to encrypt the ciphertext."
    )


# --------------------------------------------------------------------------------------------
# Key policy evaluation
# --------------------------------------------------------------------------------------------

#: Whom the current request's caller stands for (set per request by ``LocalKmsServer``); None: everyone.
_caller: ContextVar[str | None] = ContextVar("local_kms_caller", default=None)
_ACCOUNT_PRINCIPAL = re.compile(r"^(?:(?P<id>\d{12})|arn:aws[a-z-]*:iam::(?P<account>\d{12}):root)$")
_PRINCIPAL_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(?P<account>\d{12}):")


def caller_principal() -> str | None:
    return _caller.get()


@contextmanager
def acting_as(principal: str | None) -> Iterator[None]:
    """Evaluate key policies, within the block, for a caller that is ``principal`` (None: everyone)."""
    token = _caller.set(principal or None)
    try:
        yield
    finally:
        _caller.reset(token)

_CONTEXT_KEY_PREFIX = "kms:encryptioncontext:"
_NEGATED = {"stringnotequals", "stringnotlike"}
_OPERATORS = {"stringequals", "stringnotequals", "stringlike", "stringnotlike"}


class _UnsupportedCondition(Exception):
    pass


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def policy_statements(policy: Any) -> list[dict[str, Any]]:
    """The statements of a key policy (JSON text or dict); unparseable → none, as in moto."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return []
    if not isinstance(policy, dict):
        return []
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, dict)]


def _effect(statement: Mapping[str, Any]) -> str:
    return str(statement.get("Effect", "")).lower()


def _aws_principals(statement: Mapping[str, Any]) -> list[str]:
    """The AWS principals a statement names (``"*"`` for everyone); none for Service/Federated."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping) and "AWS" in principal:
        return [str(p) for p in _as_list(principal["AWS"])]
    return []


def _account_of_principal(principal: str) -> str | None:
    match = _ACCOUNT_PRINCIPAL.match(principal)
    return (match.group("id") or match.group("account")) if match else None


def names_specific_principal(statement: Mapping[str, Any]) -> bool:
    """The statement names a role, user or session — not everyone, not a whole account."""
    return any(p != "*" and _account_of_principal(p) is None for p in _aws_principals(statement))


def principal_matches(statement: Mapping[str, Any], *, effect: str = "deny") -> bool:
    """Does the statement's principal cover the current caller? (See the module docstring.)

    A caller that stands for everyone (no ``caller_principal``) matches any AWS principal.
    """
    principals = _aws_principals(statement)
    caller = caller_principal()
    if caller is None:
        return bool(principals)
    if "*" in principals or caller in principals:
        return True
    if effect != "deny":
        return False  # an account principal delegates to IAM policies; the caller has none
    match = _PRINCIPAL_ACCOUNT.match(caller)
    return match is not None and any(_account_of_principal(p) == match.group("account") for p in principals)


def action_matches(statement: Mapping[str, Any], action: str) -> bool:
    """``Action``/``NotAction`` with IAM wildcards, case-insensitive (``kms:GenerateDataKey*``)."""

    def matches(patterns: Any) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in _as_list(patterns))

    if "NotAction" in statement:
        return not matches(statement["NotAction"])
    return matches(statement.get("Action"))


def resource_matches(statement: Mapping[str, Any], key_arn: str) -> bool:
    """In a key policy ``Resource`` is ``"*"`` (this key); an ARN pattern is matched too."""
    resources = _as_list(statement.get("Resource", "*"))
    return any(fnmatch.fnmatchcase(key_arn, str(r)) for r in resources)


def _condition_value(condition_key: str, context: Mapping[str, str]) -> str | None:
    if not condition_key.lower().startswith(_CONTEXT_KEY_PREFIX):
        raise _UnsupportedCondition(condition_key)
    wanted = condition_key[len(_CONTEXT_KEY_PREFIX) :].lower()
    for key, value in context.items():
        if key.lower() == wanted:
            return value
    return None


def condition_holds(operator: str, condition_key: str, expected: Any, context: Mapping[str, str]) -> bool:
    """IAM string operators on ``kms:EncryptionContext:<key>`` (``…IfExists`` variants too).

    A missing context key satisfies the negated operators and ``…IfExists``, like IAM.
    """
    op = operator.lower()
    if_exists = op.endswith("ifexists")
    if if_exists:
        op = op[: -len("ifexists")]
    if op not in _OPERATORS:
        raise _UnsupportedCondition(operator)
    actual = _condition_value(condition_key, context)
    negated = op in _NEGATED
    if actual is None:
        return if_exists or negated
    patterns = [str(v) for v in _as_list(expected)]
    if op.endswith("like"):
        found = any(fnmatch.fnmatchcase(actual, p) for p in patterns)
    else:
        found = actual in patterns
    return not found if negated else found


def conditions_hold(conditions: Any, context: Mapping[str, str], *, unsupported: bool = True) -> bool:
    """All operators and all keys of a ``Condition`` block must hold (IAM AND semantics).

    A condition this evaluator does not understand counts as ``unsupported`` — fail closed, with a
    warning in the server log: True makes a Deny apply, False keeps an Allow from applying — so a
    test never passes because a condition was silently ignored.
    """
    if not conditions:
        return True
    try:
        return all(
            condition_holds(operator, key, expected, context)
            for operator, block in dict(conditions).items()
            for key, expected in dict(block).items()
        )
    except (_UnsupportedCondition, TypeError, ValueError) as exc:
        logger.warning("local KMS: unsupported key policy condition %s; treating it as %s", exc,
                       "matching" if unsupported else "not matching")
        return unsupported


def statement_applies(
    statement: Mapping[str, Any], key_arn: str, action: str, context: Mapping[str, str], *, effect: str = "deny"
) -> bool:
    """Does a statement of the given effect apply to the current caller doing ``action`` on the key?"""
    return (
        principal_matches(statement, effect=effect)
        and action_matches(statement, action)
        and resource_matches(statement, key_arn)
        and conditions_hold(statement.get("Condition"), context, unsupported=effect == "deny")
    )


def _validate_policy_document(policy: Any) -> None:
    if policy is None:
        return
    try:
        document = json.loads(policy) if isinstance(policy, str) else policy
    except ValueError as exc:
        raise MalformedPolicyDocumentException(f"The new key policy is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or "Statement" not in document:
        raise MalformedPolicyDocumentException("The new key policy must be a JSON object with a Statement.")


# --------------------------------------------------------------------------------------------
# Backend patches (moto.kms.models.KmsBackend)
# --------------------------------------------------------------------------------------------


def _patch_create_key(original: Callable[..., Any]) -> Callable[..., Any]:
    """CreateKey like AWS: KeyUsage defaults to ENCRYPT_DECRYPT and KeySpec to SYMMETRIC_DEFAULT, so
    DescribeKey always reports them (moto leaves KeyUsage/MultiRegion null → botocore drops them);
    a malformed Policy is rejected with MalformedPolicyDocumentException instead of being ignored."""

    @functools.wraps(original)
    def create_key(
        self: Any,
        policy: str | None,
        key_usage: str | None,
        key_spec: str | None,
        description: str,
        tags: Any,
        multi_region: bool = False,
        origin: str = "AWS_KMS",
    ) -> Any:
        _validate_policy_document(policy)
        return original(
            self,
            policy,
            key_usage or "ENCRYPT_DECRYPT",
            key_spec or "SYMMETRIC_DEFAULT",
            description,
            tags,
            bool(multi_region),
            origin,
        )

    return create_key


def _patch_put_key_policy(original: Callable[..., Any]) -> Callable[..., Any]:
    """PutKeyPolicy like AWS: a malformed policy → MalformedPolicyDocumentException (moto stores it,
    and moto's evaluator then silently ignores it)."""

    @functools.wraps(original)
    def put_key_policy(self: Any, key_id: str, policy: str) -> None:
        _validate_policy_document(policy)
        original(self, key_id, policy)

    return put_key_policy


def sync_multi_region_configuration(primary: Any) -> None:
    """Give the primary and each replica its OWN MultiRegionConfiguration (moto shares one dict via
    ``copy()``, so describing a replica turned the primary into a ``REPLICA``)."""
    replicas = [dict(r) for r in primary.multi_region_configuration.get("ReplicaKeys", [])]
    members = [primary]
    for replica in replicas:
        member = kms_models.kms_backends[primary.account_id][replica["Region"]].keys.get(primary.id)
        if member is not None:
            members.append(member)
    for member in members:
        member.multi_region_configuration = {
            "MultiRegionKeyType": "PRIMARY" if member is primary else "REPLICA",
            "PrimaryKey": {"Arn": primary.arn, "Region": primary.region},
            "ReplicaKeys": [dict(r) for r in replicas],
        }


def _patch_replicate_key(original: Callable[..., Any]) -> Callable[..., Any]:
    """ReplicateKey like AWS: accepts a key ARN (moto: HTTP 500); only a multi-Region primary can be
    replicated, once per region; the replica shares id and key material but has its own state, key
    policy (AWS default unless given), aliases, grants and MultiRegionConfiguration."""

    @functools.wraps(original)
    def replicate_key(self: Any, key_id: str, replica_region: str, policy: str | None = None) -> Any:
        primary = self.keys[self.any_id_to_key_id(key_id)]
        if not primary.multi_region:
            raise UnsupportedOperationException(f"{primary.arn} is not a multi-Region key.")
        if primary.multi_region_configuration["PrimaryKey"]["Arn"] != primary.arn:
            raise UnsupportedOperationException(f"{primary.arn} is not a multi-Region primary key.")
        if replica_region == self.region_name:
            raise ValidationException(f"The replica region {replica_region} is the primary key's region.")
        target = kms_models.kms_backends[self.account_id][replica_region]
        if primary.id in target.keys:
            raise AlreadyExistsException(f"{primary.id} already exists in {replica_region}.")
        _validate_policy_document(policy)

        replica = copy(primary)
        replica.region = replica_region
        replica.arn = (
            f"arn:{get_partition(replica_region)}:kms:{replica_region}:{self.account_id}:key/{primary.id}"
        )
        replica.creation_date = unix_time()
        replica.key_state, replica.enabled, replica.deletion_date = "Enabled", True, None
        replica.policy = policy or replica.generate_default_policy()
        replica.grants, replica.aliases, replica.rotations = {}, {}, []
        target.keys[primary.id] = replica

        configuration = primary.multi_region_configuration
        configuration["ReplicaKeys"] = [
            *configuration.get("ReplicaKeys", []),
            {"Arn": replica.arn, "Region": replica_region},
        ]
        sync_multi_region_configuration(primary)
        return replica

    return replicate_key


def _patch_backend_decrypt(original: Callable[..., Any]) -> Callable[..., Any]:
    """Decrypt like AWS: a multi-Region ciphertext decrypts with the related key in any region that
    holds it (moto cannot even find an ``mrk-`` key in its own region); a KeyId other than the key
    that encrypted → IncorrectKeyException (moto: AccessDeniedException)."""

    @functools.wraps(original)
    def decrypt(
        self: Any, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: str | None = None
    ) -> tuple[bytes, str]:
        header_id, key = key_for_ciphertext(self, ciphertext_blob)
        if key_id is not None and self.any_id_to_key_id(key_id) != key.id:
            raise _incorrect_key()
        plaintext, _ = kms_utils.decrypt(
            master_keys={header_id: key},
            ciphertext_blob=ciphertext_blob,
            encryption_context=encryption_context,
        )
        return plaintext, key.arn

    return decrypt


def _state_change_target(backend: Any, key_id: str) -> Any:
    return backend.keys[backend.any_id_to_key_id(key_id)]


def _refuse_if_pending_deletion(key: Any) -> None:
    if key.key_state == "PendingDeletion":
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")


def _patch_enable_or_disable(original: Callable[..., Any]) -> Callable[..., Any]:
    """EnableKey/DisableKey like AWS: accept a key ARN (moto: HTTP 500 KeyError) and refuse a key
    that is pending deletion (KMSInvalidStateException) instead of silently reviving it."""

    @functools.wraps(original)
    def change_state(self: Any, key_id: str) -> None:
        key = _state_change_target(self, key_id)
        _refuse_if_pending_deletion(key)
        original(self, key.id)

    return change_state


def _patch_schedule_key_deletion(original: Callable[..., Any]) -> Callable[..., Any]:
    """ScheduleKeyDeletion like AWS: accepts a key ARN; a window outside 7–30 days is a
    ValidationException (moto silently does nothing); a key already pending deletion →
    KMSInvalidStateException."""

    @functools.wraps(original)
    def schedule_key_deletion(self: Any, key_id: str, pending_window_in_days: int) -> float:
        key = _state_change_target(self, key_id)
        if not 7 <= int(pending_window_in_days) <= 30:
            raise ValidationException(
                f"1 validation error detected: Value '{pending_window_in_days}' at 'pendingWindowInDays' "
                "failed to satisfy constraint: Member must have value between 7 and 30"
            )
        _refuse_if_pending_deletion(key)
        return original(self, key.id, int(pending_window_in_days))

    return schedule_key_deletion


def _patch_cancel_key_deletion(original: Callable[..., Any]) -> Callable[..., Any]:
    """CancelKeyDeletion like AWS: accepts a key ARN; only a key pending deletion can be cancelled
    (else KMSInvalidStateException); the key comes back ``Disabled``."""

    @functools.wraps(original)
    def cancel_key_deletion(self: Any, key_id: str) -> None:
        key = _state_change_target(self, key_id)
        if key.key_state != "PendingDeletion":
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        original(self, key.id)
        key.enabled = False

    return cancel_key_deletion


def _patch_get_key_rotation_status(original: Callable[..., Any]) -> Callable[..., Any]:
    """GetKeyRotationStatus like AWS: a key pending deletion reports rotation disabled (the stored
    setting returns after CancelKeyDeletion); accepts aliases too."""

    @functools.wraps(original)
    def get_key_rotation_status(self: Any, key_id: str) -> bool:
        key = self.keys[self.any_id_to_key_id(key_id)]
        return False if key.key_state == "PendingDeletion" else bool(key.key_rotation_status)

    return get_key_rotation_status


# --------------------------------------------------------------------------------------------
# Response patches (moto.kms.responses.KmsResponse): checks AWS makes before the cryptography
# --------------------------------------------------------------------------------------------


def _context(response: Any, name: str = "EncryptionContext") -> dict[str, str]:
    return response._get_param(name, {}) or {}


def _resolve_key(response: Any, key_id: str) -> Any:
    """The key named by KeyId (id, ARN, alias, alias ARN) in this region; NotFoundException if not."""
    response._validate_key_id(key_id)
    return response.kms_backend.describe_key(key_id)


def _patch_validate_cmk_id(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS resolves a key ARN only in its own region and account: calling us-east-2 with a us-west-2
    ARN is NotFoundException even when an mrk replica with the same id exists there (moto strips the
    ARN to the id and answers). Failover code must address the replica's ARN."""

    @functools.wraps(original)
    def validate_cmk_id(self: Any, key_id: str) -> None:
        if isinstance(key_id, str) and key_id.startswith("arn:") and ":key/" in key_id:
            parts = key_id.split(":")
            if len(parts) < 6 or parts[3] != self.region or parts[4] != self.current_account:
                raise NotFoundException(f"Key '{key_id}' does not exist")
        original(self, key_id)

    return validate_cmk_id


def _guard_key_operation(action: str, operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Encrypt / GenerateDataKey like AWS: NotFound, then the key policy's Deny statements, then
    DisabledException / KMSInvalidStateException, then InvalidKeyUsageException — before moto's
    handler runs (moto checks none of these)."""

    def factory(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def guarded(self: Any) -> str:
            key = _resolve_key(self, self._get_param("KeyId"))
            ensure_operation_allowed(key, action, _context(self), operation)
            return original(self)

        return guarded

    return factory


def _patch_generate_data_key_without_plaintext(original: Callable[..., Any]) -> Callable[..., Any]:
    """GenerateDataKeyWithoutPlaintext like AWS: same checks as GenerateDataKey but authorized as
    ``kms:GenerateDataKeyWithoutPlaintext`` (moto re-enters GenerateDataKey)."""

    @functools.wraps(original)
    def generate_data_key_without_plaintext(self: Any) -> str:
        key = _resolve_key(self, self._get_param("KeyId"))
        ensure_operation_allowed(
            key, "kms:GenerateDataKeyWithoutPlaintext", _context(self), "GenerateDataKeyWithoutPlaintext"
        )
        result = json.loads(_originals["KmsResponse.generate_data_key"](self))
        result.pop("Plaintext", None)
        return json.dumps(result)

    return generate_data_key_without_plaintext


def _patch_response_decrypt(original: Callable[..., Any]) -> Callable[..., Any]:
    """Decrypt like AWS: unknown KeyId → NotFoundException; KeyId of another key →
    IncorrectKeyException; Deny policy → AccessDeniedException; Disabled → DisabledException;
    PendingDeletion → KMSInvalidStateException; non-symmetric key → InvalidKeyUsageException."""

    @functools.wraps(original)
    def decrypt(self: Any) -> str:
        key_id = self._get_param("KeyId")
        requested = _resolve_key(self, key_id) if key_id else None
        _header_id, key = key_for_ciphertext(self.kms_backend, self._get_param("CiphertextBlob"))
        if requested is not None and requested.id != key.id:
            raise _incorrect_key()
        ensure_operation_allowed(key, "kms:Decrypt", _context(self), "Decrypt")
        return original(self)

    return decrypt


def _patch_response_re_encrypt(original: Callable[..., Any]) -> Callable[..., Any]:
    """ReEncrypt like AWS: SourceKeyId mismatch → IncorrectKeyException; source key authorized as
    ``kms:ReEncryptFrom`` (source context) and destination as ``kms:ReEncryptTo`` (destination
    context); both keys must be Enabled symmetric encryption keys."""

    @functools.wraps(original)
    def re_encrypt(self: Any) -> str:
        source_key_id = self._get_param("SourceKeyId")
        requested = _resolve_key(self, source_key_id) if source_key_id else None
        destination = _resolve_key(self, self._get_param("DestinationKeyId"))
        _header_id, source = key_for_ciphertext(self.kms_backend, self._get_param("CiphertextBlob"))
        if requested is not None and requested.id != source.id:
            raise _incorrect_key()
        ensure_operation_allowed(
            source, "kms:ReEncryptFrom", _context(self, "SourceEncryptionContext"), "ReEncrypt"
        )
        ensure_operation_allowed(
            destination, "kms:ReEncryptTo", _context(self, "DestinationEncryptionContext"), "ReEncrypt"
        )
        return original(self)

    return re_encrypt


def _patch_response_get_key_rotation_status(original: Callable[..., Any]) -> Callable[..., Any]:
    """GetKeyRotationStatus like AWS: the key policy must let the caller (``kms:GetKeyRotationStatus``,
    no encryption context) → else AccessDeniedException."""

    @functools.wraps(original)
    def get_key_rotation_status(self: Any) -> str:
        key = _resolve_key(self, self._get_param("KeyId"))
        ensure_authorized(key, "kms:GetKeyRotationStatus", None)
        return original(self)

    return get_key_rotation_status


def _patch_validate_key_policy(original: Callable[..., Any]) -> Callable[..., Any]:
    """DescribeKey like AWS: the key policy is evaluated with this layer's evaluator (Deny wins,
    default deny when a principal is named; wildcards, principals, conditions; no encryption
    context) instead of moto's exact-match Deny list."""

    @functools.wraps(original)
    def validate_key_policy(self: Any, key_id: str, action: str) -> None:
        ensure_authorized(self.kms_backend.describe_key(key_id), action, None)

    return validate_key_policy


_KmsBackend = kms_models.KmsBackend
_KmsResponse = kms_responses.KmsResponse

#: (class, attribute, patch factory(original) -> replacement), applied in order.
def _patch_generate_key_id(original: Callable[..., Any]) -> Callable[..., Any]:
    """AWS multi-Region key ids are ``mrk-`` + 32 hex digits; moto writes ``mrk-`` + a dashed UUID (40 chars),
    which no real ARN carries and which ARN validation (rightly) rejects."""

    @functools.wraps(original)
    def generate_key_id(multi_region: bool = False) -> str:
        key_id = original(multi_region)
        return "mrk-" + key_id[4:].replace("-", "") if multi_region else key_id

    return generate_key_id


_PATCHES: tuple[tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    (kms_models, "generate_key_id", _patch_generate_key_id),
    (_KmsBackend, "create_key", _patch_create_key),
    (_KmsBackend, "put_key_policy", _patch_put_key_policy),
    (_KmsBackend, "replicate_key", _patch_replicate_key),
    (_KmsBackend, "decrypt", _patch_backend_decrypt),
    (_KmsBackend, "disable_key", _patch_enable_or_disable),
    (_KmsBackend, "enable_key", _patch_enable_or_disable),
    (_KmsBackend, "schedule_key_deletion", _patch_schedule_key_deletion),
    (_KmsBackend, "cancel_key_deletion", _patch_cancel_key_deletion),
    (_KmsBackend, "get_key_rotation_status", _patch_get_key_rotation_status),
    (_KmsResponse, "_validate_cmk_id", _patch_validate_cmk_id),
    (_KmsResponse, "_validate_key_policy", _patch_validate_key_policy),
    (_KmsResponse, "encrypt", _guard_key_operation("kms:Encrypt", "Encrypt")),
    (_KmsResponse, "generate_data_key", _guard_key_operation("kms:GenerateDataKey", "GenerateDataKey")),
    (_KmsResponse, "generate_data_key_without_plaintext", _patch_generate_data_key_without_plaintext),
    (_KmsResponse, "decrypt", _patch_response_decrypt),
    (_KmsResponse, "re_encrypt", _patch_response_re_encrypt),
    (_KmsResponse, "get_key_rotation_status", _patch_response_get_key_rotation_status),
)
