"""One home per error code: every `ErrorCode` walked through every table and template that reads
`envelope.ERROR_CODES` — the API answer (status, Retry-After), the key status and banner, the linking checklist,
the AWS error mapping, and the shared error card for each role. A code missing anywhere fails here, not as a
500 on a page."""

import json

import pytest
from django.template.loader import render_to_string
from django.utils.html import escape

from encryption_keys import health, providers
from encryption_keys.envelope import (
    ERROR_CODES,
    DecryptionError,
    EncryptionUnavailable,
    EnvelopeError,
    ErrorCode,
)
from encryption_keys.error_reporting import error_card, problem_for
from encryption_keys.models import EncryptionKey, KeyStatus
from encryption_keys.providers.aws import checks, kms
from encryption_keys.providers.aws.arns import parse_key_arn

ARN = "arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
ROLES = {"organization admin": True, "debug session creator / vault admin": False}


def test_every_code_has_one_complete_entry():
    assert set(ERROR_CODES) == set(ErrorCode)
    for code, facts in ERROR_CODES.items():
        assert facts.title and facts.message and facts.retry_hint and facts.remedy, code
        assert facts.remedy.endswith(".") and (not facts.ask or facts.ask.endswith(".")), code
        assert not facts.key_status or facts.key_status in KeyStatus.values, code
        # The table speaks of "the key service": a provider's own words come from its remedy().
        assert "aws" not in (facts.remedy + facts.ask + facts.message).lower(), code


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_provider_has_a_remedy_or_leaves_the_neutral_one(code):
    for provider in providers.providers():
        remedy = provider.remedy(code)
        assert remedy == "" or remedy.endswith("."), (provider.name, code)
        assert providers.remedy_for(code, key_ref=provider.ref_example) == (remedy or ERROR_CODES[code].remedy)
    assert providers.remedy_for(code, key_ref="not a key reference") == ERROR_CODES[code].remedy
    assert providers.remedy_for(code) == ERROR_CODES[code].remedy


@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("error_class", [DecryptionError, EncryptionUnavailable])
def test_api_answer_of_every_code_on_read_and_write(code, error_class):
    """A permanent code never carries Retry-After (a data plane honouring it would retry a deleted key forever);
    only `kms_unavailable` is 503 + Retry-After, on reads (resolve) and writes (ingest) alike."""
    response = problem_for(error_class(code, key_ref=ARN))
    body = json.loads(response.content)
    assert response["Content-Type"] == "application/problem+json"
    assert (body["code"], body["status"], body["retryable"]) == (code.value, response.status_code,
                                                                 code is ErrorCode.KMS_UNAVAILABLE)
    if code is ErrorCode.KMS_UNAVAILABLE:
        assert response.status_code == 503 and response["Retry-After"] == "5"
    else:
        assert response.status_code == 409 and "Retry-After" not in response
    assert ARN not in response.content.decode()  # the key is the customer's business, not the data plane's


def test_key_status_and_banner_copy_of_every_code():
    statuses = {code: KeyStatus(facts.key_status) for code, facts in ERROR_CODES.items() if facts.key_status}
    assert health.STATUS_OF_ERROR == statuses
    assert set(statuses) == set(ErrorCode) - {ErrorCode.DATA_KEY_SHREDDED}  # a shredded data key says nothing of it
    assert set(health.WHAT_TO_DO) == set(statuses.values()) == set(health.UNHEALTHY)
    for status in health.UNHEALTHY:
        key = EncryptionKey(name="Acme", region="us", key_ref=ARN, status=status)
        banner = health.banner_for(key, link=None, manages_keys=True)
        assert banner["message"].endswith(providers.remedy_for(health.CODE_OF_STATUS[status], key_ref=ARN)), status
    assert health.WHAT_TO_DO[KeyStatus.DISABLED] == ERROR_CODES[ErrorCode.KEY_DISABLED].remedy
    assert "in AWS KMS" in health.banner_for(EncryptionKey(name="Acme", region="us", key_ref=ARN,
                                                            status=KeyStatus.DISABLED), link=None,
                                           manages_keys=True)["message"]


@pytest.mark.parametrize("code", list(ErrorCode))
def test_linking_checklist_explains_every_code(code):
    run = checks._Run(organization_id="org-1", region="us", key_ref=ARN, arn=parse_key_arn(ARN))
    explanation, fix = checks._explain_kms_error(kms.KmsError(code, aws_code="SomeException"), "Decrypt", run)
    assert explanation.endswith("(SomeException)") and fix.endswith("."), code
    if code not in (ErrorCode.KEY_NOT_FOUND, ErrorCode.KEY_ACCESS_DENIED):  # linking changes only these two
        assert fix == providers.remedy_for(code, key_ref=ARN)


def test_aws_errors_map_onto_known_codes_only():
    assert set(kms._ERROR_CODES.values()) <= set(ErrorCode)


@pytest.mark.django_db
@pytest.mark.parametrize("code", list(ErrorCode))
@pytest.mark.parametrize("role", list(ROLES))
def test_the_shared_card_for_every_code_and_role(org, settings, code, role):
    manages_keys = ROLES[role]
    facts = ERROR_CODES[code]
    EncryptionKey.objects.create(organization=org, region="us", name="Acme US key", key_ref=ARN)
    card = error_card(DecryptionError(code, key_ref=ARN), organization_id=org.pk, manages_keys=manages_keys)
    html = render_to_string("encryption_keys/includes/error_card.html",
                            {"card": card, "retry_url": "/panel", "retry_target": "closest .x"})
    assert f'data-code="{code.value}"' in html and escape(facts.title) in html and escape(card.message) in html
    assert escape(card.key_label) in html and ARN in html
    advice, other = providers.remedy_for(code, key_ref=ARN), facts.ask  # the AWS key's remedy, in AWS words
    if not manages_keys and facts.ask:
        advice, other = facts.ask, advice
    assert escape(advice) in html, (code, role)
    if other:
        assert escape(other) not in html, (code, role)
    assert ("Retry now" in html) is facts.retryable
    assert ('hx-trigger="load delay:5s"' in html) is False  # only when the view asks for automatic retries
    if facts.recoverable:
        assert f"readable again within {max(settings.DATAKEY_FAILURE_TTL, 1)} seconds" in html


def test_only_an_organization_admin_is_told_to_act_on_the_key():
    for code in (ErrorCode.KEY_DISABLED, ErrorCode.KEY_PENDING_DELETION, ErrorCode.KEY_ACCESS_DENIED):
        facts = ERROR_CODES[code]
        assert facts.ask.startswith("Ask an Organization Admin") and "aws " not in facts.ask.lower()
        assert facts.action_for(manages_keys=True) == facts.remedy
        assert facts.action_for(manages_keys=False) == facts.ask
    for code in (ErrorCode.KEY_NOT_FOUND, ErrorCode.DATA_KEY_SHREDDED, ErrorCode.INTEGRITY, ErrorCode.KMS_UNAVAILABLE):
        # Nobody can fix these by acting on the key: every role gets the same words.
        assert ERROR_CODES[code].action_for(manages_keys=False) == ERROR_CODES[code].remedy


def test_the_error_of_a_code_reads_its_entry():
    for code in ErrorCode:
        error = EnvelopeError(code)
        assert error.facts is ERROR_CODES[code]
        assert (error.title, error.retryable, error.retry_hint) == (
            ERROR_CODES[code].title, ERROR_CODES[code].retryable, ERROR_CODES[code].retry_hint)
