from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from konnect_admin import tokens
from konnect_admin.forms import DATA_PLANE_NAME_HINT, TokenForm
from konnect_admin.models import DataPlaneToken, PersonalAccessToken
from konnect_admin.permissions import Action
from konnect_admin.sections import data_plane_tokens_section
from konnect_admin.selectors import control_plane_get
from konnect_admin.views.pages import render_page


def _tokens_context(request, form=None, new_token=None):
    return {
        "tokens": PersonalAccessToken.objects.filter(user=request.user, organization=request.organization),
        "form": form or TokenForm(lifetime=tokens.access_token_lifetime()),
        "new_token": new_token,
    }


@require_GET
def access_token_list(request):
    return render_page(request, "konnect_admin/access_tokens.html", _tokens_context(request), partial="tokens")


@require_POST
def access_token_create(request):
    # The form offers only lifetimes the policy allows, so the service's own check never fails from here.
    form = TokenForm(request.POST, lifetime=tokens.access_token_lifetime())
    if not form.is_valid():
        return render_page(request, "konnect_admin/access_tokens.html", _tokens_context(request, form),
                           partial="tokens", status=422 if request.htmx else 400)
    _token, text = tokens.personal_access_token_create(
        user=request.user, organization=request.organization, **form.cleaned_data
    )
    # The token text is shown once, in this response only (never through a redirect or the session).
    context = _tokens_context(request, new_token=text)
    return render_page(request, "konnect_admin/access_tokens.html", context, partial="tokens", status=201)


@require_POST
def access_token_revoke(request, pk):
    token = get_object_or_404(PersonalAccessToken, pk=pk, user=request.user, organization=request.organization)
    tokens.personal_access_token_revoke(user=request.user, token=token)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("access_token_list")


def _data_plane_context(request, control_plane, form=None, new_token=None):
    section = data_plane_tokens_section(request, control_plane)
    section.update(form=form or section["form"], new_token=new_token)
    return {"section": section}


@require_POST
def data_plane_token_create(request, pk):
    control_plane = control_plane_get(user=request.user, organization=request.organization, pk=pk,
                                      action=Action.CONTROL_PLANE_ADMIN)
    form = TokenForm(request.POST, lifetime=tokens.data_plane_token_lifetime(), name_hint=DATA_PLANE_NAME_HINT)
    if not form.is_valid():
        context = _data_plane_context(request, control_plane, form)
        return render_page(request, "konnect_admin/data_plane_tokens.html", context, partial="tokens",
                           status=422 if request.htmx else 400)
    _token, text = tokens.data_plane_token_create(actor=request.user, control_plane=control_plane, **form.cleaned_data)
    context = _data_plane_context(request, control_plane, new_token=text)
    return render_page(request, "konnect_admin/data_plane_tokens.html", context, partial="tokens", status=201)


@require_POST
def data_plane_token_revoke(request, pk, token_pk):
    control_plane = control_plane_get(user=request.user, organization=request.organization, pk=pk,
                                      action=Action.CONTROL_PLANE_ADMIN)
    token = get_object_or_404(DataPlaneToken, pk=token_pk, control_plane=control_plane)
    tokens.data_plane_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Data-plane token {token.name} revoked.")
    return redirect("control_plane_detail", pk=control_plane.pk)
