"""Two organizations with an object of every kind: what the isolation matrices request, as every role."""

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from konnect_admin import services, system_accounts, tokens
from konnect_admin.invitations import invitation_issue
from konnect_admin.models import Role, RoleAssignment
from tests import factories, leaks


def build_tenant(name: str, cmek_arn: str) -> dict:
    """One organization with an object of every kind, all reachable through some URL."""
    from debugger import blobs
    from debugger.models import DebugSession, PayloadCapture, RequestLog, SessionStatus, Trace
    from encryption_keys.lifecycle.models import RewrapJob
    from encryption_keys.models import EncryptionKey
    from vault.models import ConfigStore, ProtectionJob, Secret, Vault

    org = factories.make_organization(name)
    admin = factories.make_role_user(org, "org_admin")
    cp = factories.make_control_plane(org, name=f"{name.lower()}-payments")
    now = timezone.now()
    session = DebugSession.objects.create(
        control_plane=cp, name=f"{name} session", status=SessionStatus.IN_PROGRESS, duration_seconds=600,
        started_at=now, ends_at=now + timedelta(minutes=10), retain_until=now + timedelta(days=15))
    trace = Trace.objects.create(session=session, trace_id=secrets.token_hex(16), start_time=now, method="GET",
                                 status_code=200)
    marker = leaks.plant(f"{name.lower()}-plaintext-{secrets.token_hex(4)}")  # in every encrypted value below
    PayloadCapture.objects.create(trace=trace, kind="client_request", url=f"https://x.test/{marker}/?token={marker}",
                                  headers={"Authorization": f"Bearer {marker}"}, body=f'{{"card": "{marker}"}}'.encode(),
                                  expires_at=now + timedelta(days=3))
    RequestLog.objects.create(session=session, trace_id=trace.trace_id, time=now, level="info",
                              message=f"[key-auth] {marker}")
    store = ConfigStore.objects.create(control_plane=cp, name=f"{name} store")
    vault_value = leaks.plant(f"{name.lower()}-vault-s3cr3t-{secrets.token_hex(4)}")  # shown to nobody, ever
    secret = Secret.objects.create(store=store, key="db-password", value=vault_value)
    vault = Vault.objects.create(control_plane=cp, prefix=f"{name.lower()}-vault", config_store=store)
    key = EncryptionKey.objects.create(organization=org, region="us", name=f"{name} key", key_ref=cmek_arn)
    job = RewrapJob.objects.create(organization=org, region="us", old_key_ref=cmek_arn, new_key_ref=cmek_arn,
                                   actor=admin)
    protection_job = ProtectionJob.objects.create(control_plane=cp, key_ref=cmek_arn, actor=admin, state="completed")
    pat, pat_text = tokens.personal_access_token_create(user=admin, organization=org, name="t")
    dp_token, dp_text = tokens.data_plane_token_create(actor=admin, control_plane=cp, name="dp")
    blobs.blob_put(organization=org, region="us", key="dp-blob", data=f"dp {marker}".encode(), content_type="text/html",
                   ttl_seconds=600, control_plane=cp)
    blobs.blob_put(organization=org, region="us", key="person-blob", data=f"person {marker}".encode(),
                   content_type="text/plain", ttl_seconds=600, user=admin)
    member = factories.make_role_user(org, "member")
    assignment = RoleAssignment.objects.create(organization=org, user=member, role=Role.CP_VIEWER, control_plane=cp)
    invitation = invitation_issue(organization=org, actor=admin, email=f"invitee@{name.lower()}.test", teams=[],
                                  base_url="http://testserver")
    # A system account holding only the Envelope Materials role, with a token.
    system_account = system_accounts.system_account_create(organization=org, actor=admin, name=f"{name} automation")
    sa_assignment = system_accounts.system_account_role_assign(account=system_account, actor=admin,
                                                               role=Role.ENVELOPE_MATERIALS)
    sa_token, sa_text = system_accounts.system_account_token_create(account=system_account, actor=admin, name="t")
    return {
        "org": org, "admin": admin, "cp": cp.pk, "session": session.pk, "trace_id": trace.trace_id,
        "payload_kind": "client_request", "store": store.pk, "secret": secret.pk, "vault": vault.pk, "key": key.pk,
        "job": job.pk, "invitation": invitation.pk, "protection_job": protection_job.pk, "pat": pat.pk,
        "dp_token": dp_token.pk, "assignment": assignment.pk, "member": member,
        "membership": member.memberships.get(organization=org).pk,
        "cp_object": cp, "pat_text": pat_text, "dp_text": dp_text, "key_arn": cmek_arn,
        "store_name": store.name, "marker": marker, "vault_value": vault_value,
        "system_account": system_account.pk, "sa_assignment": sa_assignment.pk, "sa_token": sa_token.pk,
        "sa_text": sa_text,
    }


@pytest.fixture
def world(cmek):
    from devtools.local_kms import create_key

    a = build_tenant("Alpha", cmek)
    b = build_tenant("Bravo", create_key(region="us-west-2", multi_region=True))
    org, cp = a["org"], a["cp_object"]
    users = {
        "member": factories.make_role_user(org, "member"),
        "viewer": factories.make_role_user(org, "cp_viewer", cp),
        "debug_session_creator": factories.make_role_user(org, "debug_session_creator", cp),
        "vault_admin": factories.make_role_user(org, "vault_admin", cp),
        "cp_admin": factories.make_role_user(org, "cp_admin", cp),
        "org_admin_read_only": factories.make_role_user(org, "org_admin_read_only"),
        "org_admin": a["admin"],
        "other_org_admin": b["admin"],
        "invited_viewer": invited_viewer(org, cp, other_org=b["org"]),
        "cp_creator_elsewhere": factories.make_role_user(org, "cp_creator"),
        "org_admin_with_foreign_ids": a["admin"],
    }
    # A Control Plane Creator on `*` who created a control plane of its own, not A's: its data plane is
    # "a data plane of another control plane" of the same organization.
    own = services.control_plane_create(organization=org, actor=users["cp_creator_elsewhere"], name="creators-own",
                                        region="us")
    a["sibling_dp_text"] = tokens.data_plane_token_create(actor=a["admin"], control_plane=own, name="dp")[1]
    return {"a": a, "b": b, "users": users}


def invited_viewer(org, cp, *, other_org):
    """A Control Plane Viewer of another organization, invited into `org` and made a viewer of `cp`."""
    user = factories.make_role_user(other_org, "cp_viewer")
    services.member_add(organization=org, user=user, actor=None)
    factories.grant(user, org, Role.CP_VIEWER, cp)
    return user
