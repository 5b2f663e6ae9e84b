"""How a coded envelope error is shown: to an API client (problem+json) and to a person (the error card).

Both read `envelope.ERROR_CODES`, the one home of each code's copy, per-role advice, HTTP status and
retryability, and the remedy of the key's provider when the key is known (`providers.remedy_for`); nothing
here holds copy of its own except the sentence joining the card's parts.
The card is rendered by one include, `encryption_keys/includes/error_card.html`, used by the Debugger
payload panel and the vault secret pages.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.http import HttpResponse

from encryption_keys.envelope import EnvelopeError, ErrorCode
from encryption_keys.models import DataKey, EncryptionKey
from encryption_keys.providers import remedy_for
from konnect_admin.problems import problem_response


def problem_for(error: EnvelopeError) -> HttpResponse:
    """The API answer to a refused read or write: 503 + `Retry-After` only when retrying helps by itself
    (`kms_unavailable`); 409 and no `Retry-After` for every code someone has to act on (or nobody can), so a
    data plane that honours `Retry-After` never retries a disabled or deleted key forever."""
    facts = error.facts
    headers = {"Retry-After": str(facts.retry_after)} if facts.retry_after else {}
    return problem_response(status=facts.http_status, detail=error.message, code=error.code.value,
                            title=error.title, retryable=facts.retryable, headers=headers)


def answers_key_errors(view):
    """An API view whose coded key errors are answered by `problem_for` (whatever the API-wide handler does)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except EnvelopeError as error:
            return problem_for(error)

    # The view's annotations are resolved in its own module (ninja would look them up in this one).
    wrapper.__signature__ = inspect.signature(view, eval_str=True)
    return wrapper


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


def error_card(error: EnvelopeError, *, organization_id, manages_keys: bool, data_key_id=None) -> ErrorCard:
    """What happened, which key, and what the reader can do (an Organization Admin fixes the key, anyone else
    is told whom to ask) — never any ciphertext."""
    key_arn = error.key_arn or ""
    if not key_arn and data_key_id is not None and error.code is not ErrorCode.DATA_KEY_SHREDDED:
        key_arn = DataKey.objects.filter(pk=data_key_id).values_list("wrapping_key_arn", flat=True).first() or ""
    facts = error.facts
    action = facts.action_for(manages_keys=manages_keys)
    if action == facts.remedy:  # the key's provider says it in its own words (its console, its commands)
        action = remedy_for(error.code, key_ref=key_arn)
    if facts.recoverable:
        action += f" Once that is done, the data is readable again within {max(settings.DATAKEY_FAILURE_TTL, 1)} seconds."
    return ErrorCard(
        code=error.code.value,
        title=error.title,
        message=error.message,
        action=action,
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
