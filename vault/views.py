"""Pages of the vault: config stores of a control plane, their secrets (values write-only), Vault entities, and
"Protect with CMEK". Views parse, call one service or selector, and render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from encryption_keys.envelope import EnvelopeError
from encryption_keys.error_reporting import error_card
from konnect_admin.permissions import Action, can, require
from konnect_admin.views.pages import paginate, render_page
from vault import selectors, services
from vault.forms import (
    ConfigStoreDeleteForm,
    ConfigStoreForm,
    SecretCreateForm,
    SecretUpdateForm,
    VaultForm,
    add_service_errors,
)
from vault.protection import ProtectionRefused, protection_summary
from vault.protection_jobs import protection_job_submit


def _control_plane(request, pk, action=Action.VAULT_VIEW):
    return selectors.control_plane_for_vault(user=request.user, organization=request.organization, pk=pk,
                                             action=action)


def _store(request, pk, store_pk, action=Action.VAULT_VIEW):
    control_plane = _control_plane(request, pk, action)
    return selectors.config_store_get(user=request.user, control_plane=control_plane, pk=store_pk)


def _secret(request, pk, store_pk, secret_pk, action=Action.VAULT_VIEW):
    store = _store(request, pk, store_pk, action)
    return selectors.secret_get(user=request.user, store=store, pk=secret_pk)


def _posted(request):
    """The POST data, or None for a GET (an empty POST, e.g. an unticked checkbox, still binds the form)."""
    return request.POST if request.method == "POST" else None


def _go(request, url: str):
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _invalid(request) -> int:
    return 422 if request.htmx else 400


def _stores_context(request, control_plane, form=None) -> dict:
    return {
        "control_plane": control_plane,
        "config_stores": selectors.config_store_list(user=request.user, control_plane=control_plane),
        "vaults": selectors.vault_list(user=request.user, control_plane=control_plane),
        "resolutions": selectors.resolution_list(user=request.user, control_plane=control_plane),
        "protection": protection_summary(control_plane),
        "can_admin": can(request.user, Action.VAULT_ADMIN, control_plane),
        "can_protect": can(request.user, Action.KEY_MANAGE, control_plane.organization),
        "form": form or ConfigStoreForm(),
    }


@never_cache
@require_GET
def config_store_list(request, pk):
    control_plane = _control_plane(request, pk)
    return render_page(request, "vault/config_stores.html", _stores_context(request, control_plane))


@never_cache
@require_POST
def config_store_create(request, pk):
    control_plane = _control_plane(request, pk, Action.VAULT_ADMIN)
    form = ConfigStoreForm(request.POST)
    if form.is_valid():
        try:
            store = services.config_store_create(actor=request.user, control_plane=control_plane, **form.cleaned_data)
            return _go(request, reverse("vault_secret_list", args=[control_plane.pk, store.pk]))
        except ValidationError as error:
            add_service_errors(form, error)
    return render_page(request, "vault/config_stores.html", _stores_context(request, control_plane, form),
                       partial="create", status=_invalid(request))


@never_cache
@require_http_methods(["GET", "POST"])
def config_store_rename(request, pk, store_pk):
    store = _store(request, pk, store_pk, Action.VAULT_ADMIN)
    form = ConfigStoreForm(_posted(request), initial={"name": store.name})
    if request.method == "POST" and form.is_valid():
        try:
            services.config_store_update(actor=request.user, store=store, name=form.cleaned_data["name"])
            return _go(request, reverse("vault_config_store_list", args=[pk]))
        except ValidationError as error:
            add_service_errors(form, error)
    status = _invalid(request) if form.errors else 200
    return render_page(request, "vault/config_store_form.html", {"store": store, "form": form}, partial="form",
                       status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def config_store_delete(request, pk, store_pk):
    store = _store(request, pk, store_pk, Action.VAULT_ADMIN)
    form = ConfigStoreDeleteForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.config_store_delete(actor=request.user, store=store, force=form.cleaned_data["force"])
            messages.success(request, f"Config store {store.name} deleted.")
            return _go(request, reverse("vault_config_store_list", args=[pk]))
        except services.ConfigStoreNotEmpty as error:
            form.add_error("force", str(error))
    context = {"store": store, "form": form, "secret_count": store.secrets.count()}
    return render_page(request, "vault/config_store_delete.html", context, partial="form",
                       status=_invalid(request) if form.errors else 200)


@never_cache
@require_GET
def secret_list(request, pk, store_pk):
    store = _store(request, pk, store_pk)
    query = request.GET.get("q", "").strip()[:512]
    page = paginate(request, selectors.secret_list(user=request.user, store=store, key_contains=query))
    page.object_list = selectors.with_protecting_keys(page.object_list, control_plane=store.control_plane)
    context = {
        "store": store,
        "control_plane": store.control_plane,
        "page": page,
        "query": query,
        "can_admin": can(request.user, Action.VAULT_ADMIN, store.control_plane),
    }
    return render_page(request, "vault/secrets.html", context, partial="results")


@never_cache
@require_GET
def secret_status(request, pk, store_pk, secret_pk):
    """Checks that the secret can be decrypted now ("readable" or the error code); never shows the value."""
    secret = _secret(request, pk, store_pk, secret_pk)
    status_error = selectors.secret_decryption_error(user=request.user, secret=secret)
    context = {"secret": secret, "status_error": status_error,
               "card": _card(request, status_error, secret.store.control_plane) if status_error else None}
    template = "vault/secrets.html#status" if request.htmx else "vault/secret_status.html"
    return render(request, template, context)


def _card(request, error: EnvelopeError, control_plane):
    """The shared error card, with the advice for the reader's role (Organization Admins fix the key)."""
    organization = control_plane.organization
    return error_card(error, organization_id=organization.pk, manages_keys=can(request.user, Action.KEY_MANAGE,
                                                                                organization))


@never_cache
@require_http_methods(["GET", "POST"])
def secret_create(request, pk, store_pk):
    store = _store(request, pk, store_pk, Action.VAULT_ADMIN)
    form = SecretCreateForm(_posted(request))
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            services.secret_create(actor=request.user, store=store, **form.cleaned_data)
            messages.success(request, f"Secret {form.cleaned_data['key']} saved.")
            return _go(request, reverse("vault_secret_list", args=[pk, store_pk]))
        except ValidationError as invalid:
            add_service_errors(form, invalid)
        except EnvelopeError as unavailable:  # no data key: nothing was stored
            error = unavailable
    return _secret_form(request, store, form, error=error)


@never_cache
@require_http_methods(["GET", "POST"])
def secret_update(request, pk, store_pk, secret_pk):
    secret = _secret(request, pk, store_pk, secret_pk, Action.VAULT_ADMIN)
    form = SecretUpdateForm(_posted(request))
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            services.secret_update(actor=request.user, secret=secret, value=form.cleaned_data["value"])
            messages.success(request, f"Secret {secret.key} replaced.")
            return _go(request, reverse("vault_secret_list", args=[pk, store_pk]))
        except ValidationError as invalid:
            add_service_errors(form, invalid)
        except EnvelopeError as unavailable:
            error = unavailable
    return _secret_form(request, secret.store, form, secret=secret, error=error)


def _secret_form(request, store, form, *, secret=None, error=None):
    status = 200
    if error is not None:
        status = error.facts.http_status
    elif form.errors:
        status = _invalid(request)
    card = _card(request, error, store.control_plane) if error is not None else None
    context = {"store": store, "form": form, "secret": secret, "card": card}
    response = render_page(request, "vault/secret_form.html", context, partial="form", status=status)
    if error is not None and error.facts.retry_after:
        response["Retry-After"] = str(error.facts.retry_after)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def secret_delete(request, pk, store_pk, secret_pk):
    secret = _secret(request, pk, store_pk, secret_pk, Action.VAULT_ADMIN)
    if request.method == "POST":
        services.secret_delete(actor=request.user, secret=secret)
        messages.success(request, f"Secret {secret.key} deleted.")
        return _go(request, reverse("vault_secret_list", args=[pk, store_pk]))
    return render(request, "vault/secret_delete.html", {"secret": secret, "store": secret.store})


@never_cache
@require_http_methods(["GET", "POST"])
def vault_create(request, pk):
    control_plane = _control_plane(request, pk, Action.VAULT_ADMIN)
    return _vault_form(request, control_plane, None)


@never_cache
@require_http_methods(["GET", "POST"])
def vault_update(request, pk, vault_pk):
    control_plane = _control_plane(request, pk, Action.VAULT_ADMIN)
    vault = selectors.vault_get(user=request.user, control_plane=control_plane, pk=vault_pk)
    return _vault_form(request, control_plane, vault)


def _vault_form(request, control_plane, vault):
    initial = {"prefix": vault.prefix, "description": vault.description, "config_store": vault.config_store_id} \
        if vault else {}
    form = VaultForm(_posted(request), initial=initial, control_plane=control_plane)
    if request.method == "POST" and form.is_valid():
        try:
            if vault is None:
                services.vault_create(actor=request.user, control_plane=control_plane, **form.cleaned_data)
            else:
                services.vault_update(actor=request.user, vault=vault, **form.cleaned_data)
            return _go(request, reverse("vault_config_store_list", args=[control_plane.pk]))
        except ValidationError as error:
            add_service_errors(form, error)
    context = {"control_plane": control_plane, "vault": vault, "form": form}
    return render_page(request, "vault/vault_form.html", context, partial="form",
                       status=_invalid(request) if form.errors else 200)


@never_cache
@require_http_methods(["GET", "POST"])
def vault_delete(request, pk, vault_pk):
    control_plane = _control_plane(request, pk, Action.VAULT_ADMIN)
    vault = selectors.vault_get(user=request.user, control_plane=control_plane, pk=vault_pk)
    if request.method == "POST":
        services.vault_delete(actor=request.user, vault=vault)
        messages.success(request, f"Vault {vault.prefix} deleted.")
        return _go(request, reverse("vault_config_store_list", args=[pk]))
    return render(request, "vault/vault_delete.html", {"control_plane": control_plane, "vault": vault})


@never_cache
@require_http_methods(["GET", "POST"])
def protect_with_cmek(request, pk):
    """Confirm, then queue the re-wrap on a task worker and follow it on the job's page."""
    control_plane = _control_plane(request, pk)
    require(request.user, Action.KEY_MANAGE, control_plane.organization)  # Organization Admins only
    refused, status = "", 200
    if request.method == "POST":
        try:
            job = protection_job_submit(actor=request.user, control_plane=control_plane)
        except ProtectionRefused as why:
            refused, status = str(why), 409
        else:
            if job is None:
                messages.success(request, "Nothing to do: this vault is already under the CMEK.")
                return _go(request, reverse("control_plane_detail", args=[control_plane.pk]))
            return _go(request, reverse("vault_protection_job", args=[control_plane.pk, job.pk]))
    context = {"control_plane": control_plane, "protection": protection_summary(control_plane), "refused": refused,
               "running": selectors.protection_job_unfinished(user=request.user, control_plane=control_plane)}
    return render(request, "vault/protect.html", context, status=status)


@never_cache
@require_GET
def protection_job_detail(request, pk, job_pk):
    """A "Protect with CMEK" job: progress while it runs (the region polls itself with htmx), then its outcome."""
    control_plane = _control_plane(request, pk)
    job = selectors.protection_job_get(user=request.user, control_plane=control_plane, pk=job_pk)
    return render_page(request, "vault/protection_job.html", {"control_plane": control_plane, "job": job},
                       partial="progress")
