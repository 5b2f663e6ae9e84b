"""An organization's life as the platform operator runs it: created with its first Organization Admin invited,
and deleted — every data key shredded first, then every row of it removed.

Deletion keeps the organization row as a tombstone (state "deleted") and its audit log: audit events are
append-only (nobody deletes or edits one, DESIGN §2) and the deletion must itself stay on record. Re-pointing the
events to `organization=NULL` would mean editing every one of them and losing the link that scopes them; the
tombstone holds nothing but an id, a name and dates, and frees the name for a new organization.
Users are not deleted: an account may belong to other organizations, and its owner may still log in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import router, transaction
from django.db.models.deletion import Collector

from encryption_keys.lifecycle.records import count_records
from encryption_keys.lifecycle.shred import shred_data_keys
from encryption_keys.models import DataKey
from konnect_admin.invitations import invitation_issue
from konnect_admin.models import AuditEvent, Invitation, Organization, Role, User
from konnect_admin.services import audit_record, organization_create, require_operator


@transaction.atomic
def organization_create_with_admin(
    *, name: str, admin_email: str, actor: User | None, via: str, base_url: str, retention_days: int = 15,
    region: str = "",
) -> tuple[Organization, Invitation | None]:
    """A new organization with its predefined teams, and (given `admin_email`) its first Organization Admin
    invited by e-mail. The operator never becomes a member: the invited person accepts and sets their password."""
    require_operator(actor, via=via)
    organization = organization_create(name=name, actor=actor, retention_days=retention_days, via=via,
                                       region=region)
    if not admin_email:
        return organization, None
    admin_team = organization.teams.get(predefined_role=Role.ORG_ADMIN)
    invitation = invitation_issue(organization=organization, actor=actor, email=admin_email, teams=[admin_team],
                                  base_url=base_url, via=via)
    return organization, invitation


@dataclass
class OrganizationDeletion:
    """What deleting an organization removes (a dry run's answer) or removed."""

    organization: Organization
    data_keys: int  # live data keys, shredded first
    sealed_records: Counter = field(default_factory=Counter)  # rows per model with values under those keys
    rows: Counter = field(default_factory=Counter)  # rows per model deleted (the organization's audit log is kept)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def organization_deletion_plan(*, organization: Organization) -> OrganizationDeletion:
    """Counts only: nothing changes."""
    live = list(DataKey.objects.filter(organization=organization, shredded_at__isnull=True)
                .values_list("pk", flat=True))
    return OrganizationDeletion(
        organization=organization, data_keys=len(live),
        sealed_records=count_records(live, organization_id=organization.pk),
        rows=_counts(_collector(organization)),
    )


def organization_delete(
    *, organization: Organization, actor: User | None, via: str, reason: str = ""
) -> OrganizationDeletion:
    """Shred every data key of the organization (committed on its own: if anything after it fails, the data is
    already unreadable — the safe direction), then delete every row of it but its audit log, in one transaction,
    leaving the organization as a tombstone."""
    require_operator(actor, via=via)
    if organization.state == Organization.State.DELETED:
        raise ValueError(f"{organization.name} was already deleted.")
    plan = organization_deletion_plan(organization=organization)
    shredded = shred_data_keys(queryset=DataKey.objects.filter(organization=organization), actor=actor,
                               reason="organization deleted")
    with transaction.atomic():
        organization = Organization.objects.select_for_update().get(pk=organization.pk)
        # A key made between the shred and this lock (a last write) goes the same way, before its rows do.
        shredded += shred_data_keys(queryset=DataKey.objects.filter(organization=organization), actor=actor,
                                    reason="organization deleted")
        _, deleted = _collector(organization).delete()
        organization.state = Organization.State.DELETED
        organization.save(update_fields=["state"])
        rows = Counter({label: count for label, count in deleted.items() if count})
        audit_record(actor=actor, organization=organization, action="organization.deleted", target=organization,
                     details={"via": via, "reason": reason, "data_keys_shredded": shredded, "rows": dict(rows)})
    return OrganizationDeletion(organization=organization, data_keys=shredded, sealed_records=plan.sealed_records,
                                rows=rows)


def _collector(organization: Organization) -> Collector:
    """Every row that hangs off the organization, through Django's deletion collector (cascades followed),
    except its audit events."""
    collector = Collector(using=router.db_for_write(Organization), origin=organization)
    for relation in Organization._meta.related_objects:
        if relation.related_model is AuditEvent or not relation.one_to_many:
            continue
        related = relation.related_model._base_manager.filter(**{relation.field.name: organization})
        collector.collect(related)
    return collector


def _counts(collector: Collector) -> Counter:
    counts = Counter({model._meta.label: len(instances) for model, instances in collector.data.items()})
    for queryset in collector.fast_deletes:
        counts[queryset.model._meta.label] += queryset.count()
    return Counter({label: count for label, count in counts.items() if count})
