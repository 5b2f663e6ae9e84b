"""Reads of key replacements, scoped to the caller's organization (other organizations' jobs are 404)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from encryption_keys.lifecycle.models import RewrapFailure, RewrapJob
from encryption_keys.lifecycle.rewrap import data_keys_under
from encryption_keys.models import EncryptionKey
from konnect_admin.models import Organization, User
from konnect_admin.permissions import Action, require


def rewrap_job_get(*, user: User, organization: Organization, pk) -> RewrapJob:
    job = get_object_or_404(RewrapJob.objects.filter(organization=organization).select_related("actor"), pk=pk)
    require(user, Action.KEY_VIEW, organization)
    return job


def rewrap_job_list(*, user: User, organization: Organization, region: str | None = None) -> QuerySet[RewrapJob]:
    """The organization's key replacements, newest first (the replacements page)."""
    require(user, Action.KEY_VIEW, organization)
    jobs = RewrapJob.objects.filter(organization=organization).select_related("actor")
    return jobs.filter(region=region) if region else jobs


def key_replacements(*, user: User, key: EncryptionKey) -> QuerySet[RewrapJob]:
    """The replacements of this link, newest first: the key row stays when its ARN is replaced (the jobs record
    each old → new ARN), and a region unlinked then linked again is a new row, so older jobs are not its own."""
    return rewrap_job_list(user=user, organization=key.organization, region=key.region).filter(
        created_at__gte=key.created_at)


def rewrap_failures(*, job: RewrapJob) -> QuerySet[RewrapFailure]:
    return job.failures.select_related("data_key").order_by("created_at", "id")


def data_keys_left_under_old_key(*, job: RewrapJob) -> int:
    """DEKs of the job's organization and region still wrapped by the replaced key."""
    return data_keys_under(organization_id=job.organization_id, region=job.region, key_ref=job.old_key_ref).count()
