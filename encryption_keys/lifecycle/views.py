"""The organization's key replacements, and the progress page of one: a live (htmx-polled) progress bar, the
outcome, the failures."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from encryption_keys.lifecycle import selectors
from encryption_keys.lifecycle.replace import KeyReplacementError, resume_rewrap
from konnect_admin.models import Region
from konnect_admin.permissions import Action, can
from konnect_admin.views.pages import paginate, render_page

TEMPLATE = "encryption_keys/lifecycle/rewrap_job.html"
LIST_TEMPLATE = "encryption_keys/lifecycle/rewrap_job_list.html"
FAILURES_PER_PAGE = 50
JOBS_PER_PAGE = 25


@require_GET
def rewrap_job_list(request):
    region = Region(request.GET["region"]) if request.GET.get("region") in Region.values else None
    jobs = selectors.rewrap_job_list(user=request.user, organization=request.organization, region=region)
    context = {"page": paginate(request, jobs, per_page=JOBS_PER_PAGE), "region": region, "regions": Region.choices}
    return render(request, LIST_TEMPLATE, context)


@require_GET
def rewrap_job_detail(request, pk: int):
    job = selectors.rewrap_job_get(user=request.user, organization=request.organization, pk=pk)
    context = {
        "job": job,
        "failures": paginate(request, selectors.rewrap_failures(job=job), per_page=FAILURES_PER_PAGE),
        "left_under_old_key": selectors.data_keys_left_under_old_key(job=job) if job.is_finished else None,
        "can_manage": can(request.user, Action.KEY_MANAGE, request.organization),
    }
    return render_page(request, TEMPLATE, context, partial="progress")


@require_POST
def rewrap_job_resume(request, pk: int):
    job = selectors.rewrap_job_get(user=request.user, organization=request.organization, pk=pk)
    try:
        resume_rewrap(job=job, actor=request.user)
    except KeyReplacementError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Re-wrap job #{job.pk} restarted.")
    return redirect("rewrap_job_detail", pk=job.pk)
