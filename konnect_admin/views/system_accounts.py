"""Organization settings → System accounts (Organization Admins only): create, edit, delete, teams, roles and
`spat_…` tokens. Plain forms that work without JavaScript; htmx swaps the tokens section in place."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from konnect_admin import system_accounts as accounts
from konnect_admin.forms import SystemAccountForm, SystemAccountRoleForm, SystemAccountTeamsForm, TokenForm
from konnect_admin.models import RoleAssignment, SystemAccountAccessToken, Team
from konnect_admin.tokens import access_token_lifetime
from konnect_admin.views.pages import render_page

# The details form on the same page has a `name` field too: the token form's fields are `token-…`.
TOKEN_FORM_PREFIX = "token"  # noqa: S105 - a form prefix, not a secret


def _form_status(request) -> int:
    return 422 if request.htmx else 400


@require_http_methods(["GET", "POST"])
def system_account_list(request):
    organization = request.organization
    queryset = accounts.system_account_list(user=request.user, organization=organization)
    form = SystemAccountForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                account = accounts.system_account_create(organization=organization, actor=request.user,
                                                         **form.cleaned_data)
            except ValidationError as error:
                form.add_error("name", error)
            else:
                messages.success(request, f"System account {account.name} created: give it teams or roles, then a "
                                          "token.")
                return redirect("system_account_detail", pk=account.pk)
        status = _form_status(request)
    return render_page(request, "konnect_admin/system_accounts.html",
                       {"accounts": queryset.prefetch_related("access_tokens"), "form": form}, status=status)


def _detail_context(request, account, **overrides):
    organization = request.organization
    context = {
        "account": account,
        "form": SystemAccountForm(initial={"name": account.name, "description": account.description}),
        "teams_form": SystemAccountTeamsForm(organization=organization,
                                             initial={"teams": Team.objects.filter(members=account.user)}),
        "role_form": SystemAccountRoleForm(organization=organization),
        "assignments": RoleAssignment.objects.filter(organization=organization, user=account.user)
        .select_related("control_plane"),
        "tokens": account.access_tokens.all(),
        "token_form": TokenForm(lifetime=access_token_lifetime(), prefix=TOKEN_FORM_PREFIX),
        "new_token": None,
    }
    context.update(overrides)
    return context


def _account(request, pk):
    return accounts.system_account_get(user=request.user, organization=request.organization, pk=pk)


@require_GET
def system_account_detail(request, pk):
    account = _account(request, pk)
    return render_page(request, "konnect_admin/system_account_detail.html", _detail_context(request, account))


@require_POST
def system_account_update(request, pk):
    account = _account(request, pk)
    form = SystemAccountForm(request.POST)
    if form.is_valid():
        try:
            accounts.system_account_update(account=account, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error("name", error)
        else:
            messages.success(request, "System account saved.")
            return redirect("system_account_detail", pk=account.pk)
    return render_page(request, "konnect_admin/system_account_detail.html",
                       _detail_context(request, account, form=form), status=_form_status(request))


@require_POST
def system_account_teams(request, pk):
    account = _account(request, pk)
    form = SystemAccountTeamsForm(request.POST, organization=request.organization)
    if not form.is_valid():
        return render_page(request, "konnect_admin/system_account_detail.html",
                           _detail_context(request, account, teams_form=form), status=_form_status(request))
    wanted = set(form.cleaned_data["teams"])
    current = set(Team.objects.filter(members=account.user))
    for team in sorted(wanted ^ current, key=lambda team: team.name):
        accounts.system_account_team_set(account=account, actor=request.user, team=team, member=team in wanted)
    messages.success(request, "Teams saved.")
    return redirect("system_account_detail", pk=account.pk)


@require_POST
def system_account_role_assign(request, pk):
    account = _account(request, pk)
    form = SystemAccountRoleForm(request.POST, organization=request.organization)
    if form.is_valid():
        try:
            accounts.system_account_role_assign(account=account, actor=request.user, **form.cleaned_data)
        except ValueError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Role assigned.")
            return redirect("system_account_detail", pk=account.pk)
    return render_page(request, "konnect_admin/system_account_detail.html",
                       _detail_context(request, account, role_form=form), status=_form_status(request))


@require_POST
def system_account_role_revoke(request, pk, assignment_pk):
    account = _account(request, pk)
    assignment = get_object_or_404(RoleAssignment, pk=assignment_pk, organization=request.organization,
                                   user=account.user)
    accounts.system_account_role_revoke(account=account, actor=request.user, assignment=assignment)
    messages.success(request, "Role revoked.")
    return redirect("system_account_detail", pk=account.pk)


@never_cache  # the response carries the token's text
@require_POST
def system_account_token_create(request, pk):
    account = _account(request, pk)
    form = TokenForm(request.POST, lifetime=access_token_lifetime(), prefix=TOKEN_FORM_PREFIX)
    if not form.is_valid():
        return render_page(request, "konnect_admin/system_account_detail.html",
                           _detail_context(request, account, token_form=form), partial="tokens",
                           status=_form_status(request))
    _token, text = accounts.system_account_token_create(account=account, actor=request.user, **form.cleaned_data)
    # The token text is shown once, in this response only (never through a redirect or the session).
    return render_page(request, "konnect_admin/system_account_detail.html",
                       _detail_context(request, account, new_token=text), partial="tokens", status=201)


@require_POST
def system_account_token_revoke(request, pk, token_pk):
    account = _account(request, pk)
    token = get_object_or_404(SystemAccountAccessToken, pk=token_pk, system_account=account)
    accounts.system_account_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("system_account_detail", pk=account.pk)


@require_http_methods(["GET", "POST"])
def system_account_delete(request, pk):
    account = _account(request, pk)
    if request.method == "GET":
        return render_page(request, "konnect_admin/system_account_delete.html", {"account": account})
    accounts.system_account_delete(account=account, actor=request.user)
    messages.success(request, f"System account {account.name} deleted: its tokens no longer work.")
    return redirect("system_account_list")
