from django import forms
from django.core import signing
from django.urls import reverse
from django.utils.html import format_html

from encryption_keys import providers
from encryption_keys.models import EncryptionKey
from konnect_admin.models import Region


def key_ref_help() -> str:
    """The reference forms this installation accepts, one per key provider (AWS: a key ARN, not an alias ARN)."""
    return "; ".join(f"{provider.label}: {provider.ref_example}" for provider in providers.providers())


#: How long a "Link anyway?" confirmation stays valid: the checks it confirmed are re-run on confirm anyway.
CONFIRMATION_MAX_AGE = 30 * 60
_CONFIRMATION_SALT = "encryption_keys.link-anyway"


def confirmation_token(*, organization, purpose: str, region: str, key_ref: str, warnings) -> str:
    """The signed value of the hidden ``confirmed`` field of a "Link anyway?" step: which warnings (check ids)
    the person saw for this very key reference, region and purpose ("link" or "replace:<key pk>")."""
    return signing.dumps({"org": str(organization.pk), "purpose": purpose, "region": region, "key_ref": key_ref,
                          "warnings": sorted(check.id for check in warnings)}, salt=_CONFIRMATION_SALT)


def confirmed_warnings(token: str, *, organization, purpose: str, region: str, key_ref: str) -> frozenset[str]:
    """The warnings ``token`` confirmed, when it was issued for exactly this key reference, region, purpose and
    organization; otherwise none (a changed or tampered reference is verified and confirmed afresh)."""
    if not token:
        return frozenset()
    try:
        data = signing.loads(token, salt=_CONFIRMATION_SALT, max_age=CONFIRMATION_MAX_AGE)
    except signing.BadSignature:
        return frozenset()
    expected = {"org": str(organization.pk), "purpose": purpose, "region": region, "key_ref": key_ref}
    if not isinstance(data, dict) or any(data.get(name) != value for name, value in expected.items()):
        return frozenset()
    return frozenset(data.get("warnings") or ())


class ReplaceKeyForm(forms.Form):
    name = forms.CharField(max_length=100, min_length=1)
    key_ref = forms.CharField(label="Key reference", max_length=2048)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key_ref"].help_text = key_ref_help()

    def clean_key_ref(self):
        return self.cleaned_data["key_ref"].strip()


class LinkKeyForm(ReplaceKeyForm):
    region = forms.ChoiceField(label="Konnect region", choices=Region.choices,
                               help_text="The key must live in this Konnect geo.")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_region(self):
        region = self.cleaned_data["region"]
        linked = EncryptionKey.objects.filter(organization=self.organization, region=region).first()
        if linked is not None:
            raise forms.ValidationError(format_html(
                'A key is already linked for this region (one key per region). Replace it from '
                '<a href="{}">its page</a>.', reverse("encryption_key_detail", args=[linked.pk])))
        return region


class UsageFilterForm(forms.Form):
    operation = forms.ChoiceField(required=False)
    outcome = forms.ChoiceField(required=False)

    def __init__(self, *args, operations, outcomes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operation"].choices = [("", "All operations"), *((op, op) for op in operations)]
        self.fields["outcome"].choices = [("", "All outcomes"), *((o, o) for o in outcomes)]

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {"operation": "", "outcome": ""}
        return {name: self.cleaned_data.get(name) or "" for name in ("operation", "outcome")}
