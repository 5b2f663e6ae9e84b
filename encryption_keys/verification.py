"""The pre-link verification checklist: its verdicts and shape, and the dispatch to the key's provider.

`verify_key` asks the provider the pasted reference is written for (`providers.provider_for`) to run its
ordered checks, each pass / warn / fail with a human explanation and the fix; `run_checks` is the common runner
that stops at the first blocking failure (the checks after it are shown as not run, and the key service is not
asked anything more). Linking is allowed only when no check fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from encryption_keys.envelope import ErrorCode
from encryption_keys.providers import InvalidKeyRef, provider_for
from konnect_admin.models import Region


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"  # ran, and does not apply to this key (replicas of a single-region key)
    NOT_RUN = "not_run"  # an earlier blocking check failed

    @property
    def label(self) -> str:
        return "Not run" if self is Verdict.NOT_RUN else self.value.capitalize()


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    verdict: Verdict
    explanation: str
    fix: str = ""
    error_code: str = ""

    @property
    def verdict_label(self) -> str:
        return self.verdict.label


@dataclass
class Checklist:
    key_ref: str
    region: str
    checks: list[Check] = field(default_factory=list)
    #: The provider's snapshot of the key, stored on the link (KeyHealth.metadata).
    metadata: dict = field(default_factory=dict)
    provider: str = ""

    @property
    def key_arn(self) -> str:
        return self.key_ref

    @property
    def ok(self) -> bool:
        """Linkable: no check failed (warnings are allowed)."""
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.verdict == Verdict.FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.verdict == Verdict.WARN]

    @property
    def kms_unreachable(self) -> bool:
        return any(check.error_code == ErrorCode.KMS_UNAVAILABLE for check in self.failures)

    def verdicts(self) -> dict[str, str]:
        return {check.id: check.verdict.value for check in self.checks}

    def get(self, check_id: str) -> Check:
        return next(check for check in self.checks if check.id == check_id)


#: What a check answers: (verdict, explanation, fix) or (verdict, explanation, fix, error code).
Outcome = tuple[Verdict, str, str] | tuple[Verdict, str, str, str]


def run_checks(checks: list[tuple[str, str, bool, Callable]], run, *, key_ref: str, region: str,
               provider: str) -> Checklist:
    """Run (id, title, blocking, check) in order, each given ``run`` (the provider's state of this run). A failed
    blocking check ends the run: every later check needs what it proved, so it is shown as not run."""
    checklist = Checklist(key_ref=key_ref, region=region, provider=provider)
    stopped_at: Check | None = None
    for check_id, title, blocking, run_check in checks:
        if stopped_at is not None:
            check = Check(check_id, title, Verdict.NOT_RUN, f"Not run: “{stopped_at.title}” failed; fix it first.")
        else:
            verdict, explanation, fix, *code = run_check(run)
            check = Check(check_id, title, verdict, explanation, fix, code[0] if code else "")
            if blocking and verdict == Verdict.FAIL:
                stopped_at = check
        checklist.checks.append(check)
    return checklist


def verify_key(*, organization, region: str, key_ref: str) -> Checklist:
    """The checklist of ``key_ref`` for ``organization``'s ``region``, by its provider. Text no provider
    recognises gives a checklist whose one check fails with the reason."""
    if region not in Region.values:
        raise ValueError(f"unknown Konnect region {region!r}")
    key_ref = (key_ref or "").strip()
    try:
        provider = provider_for(key_ref)
    except InvalidKeyRef as invalid:
        checklist = Checklist(key_ref=key_ref, region=region)
        checklist.checks.append(Check("key_ref", "Key reference", Verdict.FAIL, invalid.reason,
                                      "Paste the reference of your key as your key service shows it."))
        return checklist
    return provider.verify(organization=organization, region=region, key_ref=key_ref)
