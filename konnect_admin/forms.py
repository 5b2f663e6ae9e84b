from django import forms

from konnect_admin.models import ControlPlane, Role, Team

CONTROL_PLANE_ROLES = [(role.value, role.label) for role in Role
                       if role not in (Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY, Role.ENVELOPE_MATERIALS)]


class LabelsField(forms.CharField):
    """`key=value` pairs, one per line or comma separated, as Konnect labels."""

    def to_python(self, value):
        labels = {}
        for item in (value or "").replace("\n", ",").split(","):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Write labels as key=value; {item.strip()!r} has no '='.")
            if len(key.strip()) > 63 or len(val.strip()) > 63:
                raise forms.ValidationError("Label keys and values are at most 63 characters.")
            labels[key.strip()] = val.strip()
        if len(labels) > 50:
            raise forms.ValidationError("At most 50 labels.")
        return labels


class ControlPlaneForm(forms.ModelForm):
    labels = LabelsField(required=False, help_text="key=value, comma separated", widget=forms.TextInput)

    class Meta:
        model = ControlPlane
        fields = ["name", "region", "cluster_type", "description", "labels"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean(self):
        cleaned = super().clean()
        name, region = cleaned.get("name"), cleaned.get("region")
        if name and region and ControlPlane.objects.filter(organization=self.organization, region=region, name=name).exists():
            self.add_error("name", "A control plane with this name already exists in that region.")
        return cleaned

    def validate_unique(self):
        """Uniqueness involves the organization, which is not a form field; `clean()` checks it."""


class RoleAssignmentForm(forms.Form):
    user = forms.ModelChoiceField(queryset=None, to_field_name="pk", label="Person")
    role = forms.ChoiceField(choices=CONTROL_PLANE_ROLES)
    control_plane = forms.ModelChoiceField(queryset=None, required=False, empty_label="* (all control planes)")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        from konnect_admin.models import User

        self.fields["user"].queryset = User.objects.filter(
            memberships__organization=organization, system_account__isnull=True).order_by("email")
        self.fields["control_plane"].queryset = organization.control_planes.order_by("name")


class TeamMembershipForm(forms.Form):
    """Add a person to a team (`member` on), or take them out of it (`member` off)."""

    user = forms.ModelChoiceField(queryset=None, label="Person")
    team = forms.ModelChoiceField(queryset=None, label="Team")
    member = forms.BooleanField(required=False)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        from konnect_admin.models import User

        self.fields["user"].queryset = User.objects.filter(memberships__organization=organization,
                                                           system_account__isnull=True).order_by("email")
        self.fields["user"].label_from_instance = lambda user: user.email
        self.fields["team"].queryset = Team.objects.filter(organization=organization).order_by("name")


class OrganizationSwitchForm(forms.Form):
    organization = forms.UUIDField()


def _lifetime_label(days: int) -> str:
    return f"{days // 365} year{'s' if days > 365 else ''}" if days % 365 == 0 else f"{days} days"


DATA_PLANE_NAME_HINT = "Which gateways use it, e.g. eu-west-gateways."


class TokenForm(forms.Form):
    """A token's name and lifetime: a select of the lifetimes the policy allows, its default preselected."""

    name = forms.CharField(max_length=100, min_length=1, help_text="What uses this token, e.g. terraform-ci.")
    expires_in_days = forms.TypedChoiceField(coerce=int, label="Expires after", choices=())

    def __init__(self, *args, lifetime, name_hint: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if name_hint:
            self.fields["name"].help_text = name_hint
        field = self.fields["expires_in_days"]
        field.choices = [(days, _lifetime_label(days)) for days in lifetime.choices()]
        field.initial = lifetime.default_days
        field.help_text = f"At most {_lifetime_label(lifetime.max_days)}; the token stops working after that."


class InvitationForm(forms.Form):
    """"Invite people": one or more addresses (comma, space or line separated) into the chosen teams."""

    MAX_EMAILS = 20

    emails = forms.CharField(label="Email addresses", widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="One or more, separated by commas or new lines.")
    teams = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
                                           help_text="They join these teams when they accept.")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teams"].queryset = Team.objects.filter(organization=organization).order_by("name")

    def clean_emails(self):
        from django.core.validators import validate_email

        found = list(dict.fromkeys(e for e in self.cleaned_data["emails"].replace(",", " ").split() if e))
        if len(found) > self.MAX_EMAILS:
            raise forms.ValidationError(f"At most {self.MAX_EMAILS} addresses at once.")
        invalid = []
        for email in found:
            try:
                validate_email(email)
            except forms.ValidationError:
                invalid.append(email)
        if invalid:
            raise forms.ValidationError(f"Not an email address: {', '.join(invalid)}.")
        if not found:
            raise forms.ValidationError("Enter at least one email address.")
        return found


class AcceptInvitationForm(forms.Form):
    """A new person's name and password, checked by the project's password validators."""

    first_name = forms.CharField(max_length=150, label="First name",
                                 widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(max_length=150, label="Last name", required=False,
                                widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    password1 = forms.CharField(label="Password", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="Password again", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        from django.contrib.auth import password_validation

        from konnect_admin.models import User

        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            user = User(email=self.email, first_name=cleaned.get("first_name", ""),
                        last_name=cleaned.get("last_name", ""))
            try:
                password_validation.validate_password(password1, user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class SystemAccountForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. terraform-ci or billing-encryption.")
    description = forms.CharField(max_length=250, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SystemAccountRoleForm(forms.Form):
    """A role for a system account: a control-plane role (one control plane or `*`) or Envelope Materials (`*`)."""

    role = forms.ChoiceField(choices=[(role.value, role.label) for role in Role
                                      if role not in (Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY)])
    control_plane = forms.ModelChoiceField(queryset=None, required=False, empty_label="* (all control planes)")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["control_plane"].queryset = organization.control_planes.order_by("name")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("role") == Role.ENVELOPE_MATERIALS and cleaned.get("control_plane") is not None:
            self.add_error("control_plane", "Envelope Materials is organization-wide: choose * (all control planes).")
        return cleaned


class SystemAccountTeamsForm(forms.Form):
    teams = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teams"].queryset = Team.objects.filter(organization=organization).order_by("name")


class AuditFilterForm(forms.Form):
    """The audit log's filters: a GET form (works without JavaScript; every filter lands in the query string, so
    pagination and links keep them). Choices come from the caller's organization only."""

    actor = forms.ChoiceField(required=False, label="Who")
    action = forms.ChoiceField(required=False, label="Action")
    target = forms.CharField(required=False, max_length=300, label="Target",
                             help_text="Part of its name, or its id.")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actors: list[str], **kwargs):
        from konnect_admin.audit_display import ACTIONS, SYSTEM, action_phrase

        super().__init__(*args, **kwargs)
        people = sorted(label for label in actors if label and label != SYSTEM)
        self.fields["actor"].choices = [("", "Anyone"), (SYSTEM, "System (scheduled jobs and checks)")] + [
            (label, label) for label in people]
        families: dict[str, list] = {}
        for action in sorted(ACTIONS):
            families.setdefault(action.rpartition(".")[0], []).append((action, action_phrase(action)))
        groups = []
        for family, choices in families.items():
            label = family.replace("_", " ").replace(".", " ").replace("-", " ").capitalize()
            groups.append((label, [(f"{family}.", f"Every {label.lower()} action"), *choices]))
        self.fields["action"].choices = [("", "Any action"), *groups]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "Choose a date on or after the “From” date.")
        return cleaned
