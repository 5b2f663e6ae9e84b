from django import forms
from django.core.exceptions import ValidationError

from vault.models import SECRET_KEY_MAX, SECRET_VALUE_MAX, STORE_NAME_MAX, ConfigStore, valid_secret_key


def secret_value_field(**kwargs) -> forms.CharField:
    """Write-only: a password input that is never pre-filled (not even when the form comes back with errors)."""
    return forms.CharField(
        max_length=SECRET_VALUE_MAX,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: once saved, the value can never be shown again, only replaced.",
        **kwargs,
    )


class ConfigStoreForm(forms.Form):
    name = forms.CharField(min_length=1, max_length=STORE_NAME_MAX)


class SecretCreateForm(forms.Form):
    key = forms.CharField(max_length=SECRET_KEY_MAX, strip=False, validators=[valid_secret_key],
                          help_text="Letters, digits, '.', '_' and '-', in segments separated by '/'. Data planes "
                                    "reference it as {vault://<prefix>/<key>}.")
    value = secret_value_field()


class SecretUpdateForm(forms.Form):
    value = secret_value_field(label="New value")


class VaultForm(forms.Form):
    prefix = forms.CharField(max_length=64, help_text="Lowercase letters, digits and dashes; "
                             "references read {vault://<prefix>/<key>}.")
    config_store = forms.ModelChoiceField(queryset=ConfigStore.objects.none(), empty_label=None)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, control_plane, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["config_store"].queryset = ConfigStore.objects.filter(control_plane=control_plane)


class ConfigStoreDeleteForm(forms.Form):
    force = forms.BooleanField(required=False, label="Also delete every secret of this config store")


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (or on the form when it has no such field)."""
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
