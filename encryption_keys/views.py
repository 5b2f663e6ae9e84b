"""Organization settings → Encryption Keys: list, Link key (with the verification checklist), key page
(status, Check now, key-usage log, data-key inventory), Unlink, and the route to Replace."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from encryption_keys import health, selectors, services
from encryption_keys.forms import LinkKeyForm, ReplaceKeyForm, UsageFilterForm
from encryption_keys.lifecycle import selectors as lifecycle_selectors
from encryption_keys.providers import access_statements, providers
from konnect_admin import navigation
from konnect_admin.permissions import Action, can, require
from konnect_admin.views.pages import paginate, render_page

USAGE_PAGE_SIZE = 25
REPLACEMENTS_SHOWN = 10


def _organization(request):
    if request.organization is None:
        raise PermissionDenied("You are not a member of any organization.")
    return request.organization


def _error_status(request) -> int:
    return 422 if request.htmx else 400


def _to_detail(request, key):
    url = reverse("encryption_key_detail", args=[key.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
def key_list(request):
    organization = _organization(request)
    keys = selectors.key_list(user=request.user, organization=organization)
    rows = [
        {"key": key, "inventory": selectors.data_key_inventory(
            organization=organization, region=key.region, wrapping_key_ref=key.key_ref)}
        for key in keys
    ]
    context = {"rows": rows, "can_manage": can(request.user, Action.KEY_MANAGE, organization),
               "key_services": [provider.label for provider in providers()],
               "revocation_bound": health.revocation_bound_seconds()}
    return render_page(request, "encryption_keys/key_list.html", context)


@require_http_methods(["GET", "POST"])
def key_link(request):
    organization = _organization(request)
    require(request.user, Action.KEY_MANAGE, organization)
    form = LinkKeyForm(request.POST or None, organization=organization)
    context = {"form": form, "access_statements": access_statements(organization),
               "revocation_bound": health.revocation_bound_seconds()}
    status = _error_status(request) if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            linked = services.link_key(organization=organization, actor=request.user, **form.cleaned_data)
            context.update(checklist=linked.checklist, key=linked.key)
            status = 201
        except services.KeyVerificationFailed as failure:
            context["checklist"] = failure.checklist
        except services.KeyAlreadyLinked as error:
            form.add_error("region", str(error))
        except services.KeyInUse as error:
            form.add_error("key_ref", str(error))
    return render_page(request, "encryption_keys/key_link.html", context, partial="connect", status=status)


def _detail_context(request, key) -> dict:
    organization = key.organization
    operations, outcomes = selectors.key_usage_choices(organization=organization, key=key)
    filters = UsageFilterForm(request.GET or None, operations=operations, outcomes=outcomes)
    calls = selectors.key_usage_log(user=request.user, organization=organization, key=key, **filters.filters())
    return {
        "key": key,
        "history": key.status_changes.all()[:20],
        "inventory": selectors.data_key_inventory(organization=organization, region=key.region,
                                                  wrapping_key_ref=key.key_ref),
        "filters": filters,
        "calls": paginate(request, calls, per_page=USAGE_PAGE_SIZE),
        "can_manage": can(request.user, Action.KEY_MANAGE, organization),
        "days_left": health.days_left(key.deletion_date),
        "revocation_bound": health.revocation_bound_seconds(),
        "access_statements": access_statements(organization, key_ref=key.key_ref),
        **_replacements_context(request, key),
    }


def _replacements_context(request, key) -> dict:
    """The key's replacements (old → new ARN), newest first; the latest one's progress is shown live."""
    shown = list(lifecycle_selectors.key_replacements(user=request.user, key=key)[:REPLACEMENTS_SHOWN + 1])
    return {"replacements": shown[:REPLACEMENTS_SHOWN], "more_replacements": len(shown) > REPLACEMENTS_SHOWN,
            "latest_replacement": shown[0] if shown else None}


@require_GET
def key_detail(request, pk):
    key = selectors.key_get(user=request.user, organization=_organization(request), pk=pk)
    return render_page(request, "encryption_keys/key_detail.html", _detail_context(request, key), partial="usage")


@require_GET
def key_replacements(request, pk):
    """The key page's replacements region, polled by htmx while the latest replacement runs."""
    key = selectors.key_get(user=request.user, organization=_organization(request), pk=pk)
    if not request.htmx:
        return redirect(reverse("encryption_key_detail", args=[key.pk]) + "#key-replacements")
    inventory = selectors.data_key_inventory(organization=key.organization, region=key.region,
                                             wrapping_key_ref=key.key_ref)
    context = {"key": key, **_replacements_context(request, key), "inventory": inventory, "inventory_oob": True}
    return render(request, "encryption_keys/key_detail.html#replacements", context)


@require_POST
def key_check(request, pk):
    key = selectors.key_get(user=request.user, organization=_organization(request), pk=pk, action=Action.KEY_MANAGE)
    result = services.check_key_health(key=key, actor=request.user)
    if not request.htmx:
        messages.info(request, f"Checked: {result.key.get_status_display()}.")
        return redirect("encryption_key_detail", pk=key.pk)
    # The organization banner changes with the key's status: the fragment updates it out of band.
    context = {**_detail_context(request, result.key), "check": result,
               "oob_banners": True, "org_banners": navigation.collect(navigation.BANNERS, request)}
    return render_page(request, "encryption_keys/key_detail.html", context, partial="status")


@require_http_methods(["GET", "POST"])
def key_unlink(request, pk):
    key = selectors.key_get(user=request.user, organization=_organization(request), pk=pk, action=Action.KEY_MANAGE)
    if request.method == "POST":
        services.unlink_key(key=key, actor=request.user)
        messages.success(request, f"Key “{key.name}” unlinked: new data of {key.get_region_display()} "
                                  "is encrypted under the platform key.")
        url = reverse("encryption_key_list")
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    inventory = selectors.data_key_inventory(organization=key.organization, region=key.region,
                                             wrapping_key_ref=key.key_ref)
    return render(request, "encryption_keys/key_unlink.html", {"key": key, "inventory": inventory})


@require_http_methods(["GET", "POST"])
def key_replace(request, pk):
    key = selectors.key_get(user=request.user, organization=_organization(request), pk=pk, action=Action.KEY_MANAGE)
    service = services.key_replacement()
    if service is None:
        return render(request, "encryption_keys/key_replace.html", {"key": key, "unavailable": True}, status=503)
    replace_key, errors = service
    form = ReplaceKeyForm(request.POST or None, initial={"name": key.name, "description": key.description})
    context = {"key": key, "form": form, "access_statements": access_statements(key.organization)}
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["key_ref"] == key.key_ref:
            form.add_error("key_ref", "This key is already linked; enter the reference of the new key.")
        else:
            try:
                replace_key(organization=key.organization, region=key.region, actor=request.user,
                            new_key_ref=form.cleaned_data["key_ref"], name=form.cleaned_data["name"],
                            description=form.cleaned_data["description"])
                messages.success(request, "Key replaced: new data uses the new key; existing data keys are being "
                                          "re-wrapped. Keep the old key enabled until that finishes.")
                return _to_detail(request, key)
            except errors as error:
                context["checklist"] = getattr(error, "checklist", None)
                form.add_error(None, str(error) if context["checklist"] is None else "Verification failed.")
    status = _error_status(request) if request.method == "POST" else 200
    return render_page(request, "encryption_keys/key_replace.html", context, partial="replace", status=status)


# --- navigation providers (registered in apps.py) ------------------------------------------------------


def settings_menu(request):
    if not can(request.user, Action.KEY_VIEW, request.organization):
        return None
    return {"label": "Encryption Keys", "url": reverse("encryption_key_list")}


def unhealthy_key_banners(request):
    keys = selectors.unhealthy_keys(organization=request.organization)
    may_view = bool(keys) and can(request.user, Action.KEY_VIEW, request.organization)
    manages_keys = bool(keys) and can(request.user, Action.KEY_MANAGE, request.organization)
    return [
        health.banner_for(key, link=reverse("encryption_key_detail", args=[key.pk]) if may_view else None,
                          manages_keys=manages_keys)
        for key in keys
    ]


def dashboard_card(request):
    organization = request.organization
    if organization is None or not can(request.user, Action.KEY_VIEW, organization):
        return None
    return {"template": "encryption_keys/dashboard_card.html",
            "keys": list(selectors.key_list(user=request.user, organization=organization)),
            "can_manage": can(request.user, Action.KEY_MANAGE, organization)}
