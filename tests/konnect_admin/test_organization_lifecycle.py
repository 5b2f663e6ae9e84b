"""An organization's life on a shell and in the operator console: created with its first admin invited, suspended,
reactivated, and deleted — data keys shredded first, rows removed, the audit log kept on a tombstone."""

import io
import re

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.db.models.signals import pre_delete
from django.urls import reverse

from encryption_keys import keyring
from encryption_keys.models import DataKey
from konnect_admin import invitations
from konnect_admin.models import (
    AuditEvent,
    ControlPlane,
    Invitation,
    Membership,
    Organization,
    Role,
    Team,
    User,
)
from konnect_admin.permissions import Action, can
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def outcome(note: SealedNote) -> str:
    keyring.reset_for_tests()
    [result] = keyring.reveal_many([note.text])
    return result.value if result.ok else result.error.code.value


# --- create ------------------------------------------------------------------------------------------------------


def test_create_organization_invites_the_first_admin_who_accepts_in_the_browser_flow(client):
    out = run("create_organization", "--name", "Initech", "--admin-email", "peter@initech.test", "--region", "eu")
    org = Organization.objects.get(name="Initech")
    assert set(org.teams.values_list("predefined_role", flat=True)) == {
        Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY, Role.CP_ADMIN}
    assert not org.memberships.exists()
    [message] = mail.outbox
    link = re.search(r"http://127\.0\.0\.1:8000(/invitations/\S+/)", message.body).group(1)
    assert link in out and str(org.pk) in out and "peter@initech.test" in out
    created = AuditEvent.objects.get(organization=org, action="organization.created")
    assert created.actor is None and created.details == {"via": "manage.py", "region": "eu"}
    invited = AuditEvent.objects.get(organization=org, action="invitation.created")
    assert invited.details == {"email": "peter@initech.test", "teams": ["Organization Admin"], "via": "manage.py"}

    client.get(link, follow=True)
    client.post("/invitations/accept/", {"first_name": "Peter", "password1": "tps-reports-2026!",
                                         "password2": "tps-reports-2026!"})
    peter = User.objects.get(email="peter@initech.test")
    assert can(peter, Action.MEMBERS_MANAGE, org) and can(peter, Action.KEY_MANAGE, org)
    assert client.get(reverse("member_list")).status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "Acme", "--admin-email", "a@b.test"], "exists already"),
    (["--name", "New", "--admin-email", "not-an-address"], "is not an e-mail address"),
    (["--name", " ", "--admin-email", "a@b.test"], "--name must be"),
])
def test_create_organization_refuses_bad_input_with_a_command_error(org, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_organization", *args)
    assert Organization.objects.count() == 1 and not mail.outbox


def test_the_operator_console_creates_an_organization_and_invites_its_first_admin(client):
    operator = User.objects.create_superuser(email="ops@platform.test", password="x-operator-password-1")
    client.force_login(operator)
    response = client.post(reverse("admin:konnect_admin_organization_add"),
                           {"name": "Hooli", "retention_days": "15", "admin_email": "gavin@hooli.test"}, follow=True)
    body = response.content.decode()
    assert response.status_code == 200 and "Invitation e-mailed to gavin@hooli.test." in body
    org = Organization.objects.get(name="Hooli")
    [message] = mail.outbox
    token_path = re.search(r"https?://testserver(/invitations/\S+/)", message.body).group(1)
    assert token_path not in body  # the link is for the invited person only
    assert not org.memberships.filter(user=operator).exists()
    invitation = Invitation.objects.get(organization=org)
    assert invitation.invited_by == operator and list(invitation.teams.values_list("predefined_role", flat=True)) == [
        Role.ORG_ADMIN]
    for action in ("organization.created", "invitation.created"):
        event = AuditEvent.objects.get(organization=org, action=action)
        assert event.actor == operator and event.details["via"] == "platform-admin"


# --- suspend / reactivate ----------------------------------------------------------------------------------------


def test_suspend_and_reactivate_commands_are_audited(org):
    assert "suspended." in run("suspend_organization", str(org.pk), "--reason", "unpaid")
    org.refresh_from_db()
    assert org.state == Organization.State.INACTIVE
    assert "already suspended" in run("suspend_organization", "Acme")
    assert "reactivated." in run("reactivate_organization", "Acme")
    org.refresh_from_db()
    assert org.state == Organization.State.ACTIVE
    events = AuditEvent.objects.filter(organization=org, action__in=["organization.suspended",
                                                                      "organization.reactivated"])
    assert [(e.action, e.actor_label, e.details) for e in events.order_by("id")] == [
        ("organization.suspended", "system", {"via": "manage.py", "reason": "unpaid"}),
        ("organization.reactivated", "system", {"via": "manage.py", "reason": ""}),
    ]


# --- delete ------------------------------------------------------------------------------------------------------


@pytest.fixture
def populated(local_kms, org, other_org, org_admin, other_org_admin, control_plane):
    """Acme with sealed data, members, an invitation; Globex with sealed data that must stay readable."""
    member = factories.make_role_user(org, "cp_viewer", control_plane)
    invitations.invitation_create(organization=org, actor=org_admin, email="new@acme.test", teams=[],
                                  base_url="http://testserver")
    notes = [SealedNote.objects.create(organization=org, scope_ref=f"s{i}", title=f"acme {i}", text=f"acme {i}")
             for i in range(3)]
    kept = SealedNote.objects.create(organization=other_org, scope_ref="s0", title="globex", text="globex value")
    return {"member": member, "notes": notes, "kept": kept}


def test_delete_organization_dry_run_says_what_would_go_and_changes_nothing(org, populated):
    before = {model: model._base_manager.count() for model in (SealedNote, ControlPlane, Membership, Team, DataKey,
                                                               Invitation, AuditEvent)}
    out = run("delete_organization", str(org.pk))
    assert "Would delete Acme" in out and "3 data keys shredded first: 3 sealed records would become" in out
    assert "testapp.SealedNote: 3" in out
    assert "konnect_admin.ControlPlane: 1" in out and "konnect_admin.Membership: 2" in out
    assert "AuditEvent" not in out and "Dry run: nothing changed" in out
    assert before == {model: model._base_manager.count() for model in before}
    assert all(outcome(note) == note.title for note in populated["notes"])
    org.refresh_from_db()
    assert org.state == Organization.State.ACTIVE


def test_delete_organization_shreds_every_data_key_before_the_rows_go(org, other_org, populated):
    seen_at_delete = {}

    def record(sender, instance, **kwargs):
        seen_at_delete[instance.title] = outcome(instance)

    pre_delete.connect(record, sender=SealedNote)
    try:
        out = run("delete_organization", str(org.pk), "--yes", "--reason", "contract ended")
    finally:
        pre_delete.disconnect(record, sender=SealedNote)

    assert seen_at_delete == {note.title: "data_key_shredded" for note in populated["notes"]}
    assert "Deleted Acme" in out and "3 data keys shredded first" in out
    for model in (SealedNote, ControlPlane, Membership, Team, DataKey, Invitation):
        assert not model._base_manager.filter(organization=org).exists(), model
    assert outcome(populated["kept"]) == "globex value"  # another organization's data still reads
    assert Membership.objects.filter(organization=other_org).count() == 1 and Team.objects.filter(organization=other_org).count() == 3
    assert User.objects.filter(pk=populated["member"].pk).exists()  # accounts are not deleted

    org.refresh_from_db()
    assert org.state == Organization.State.DELETED
    events = list(AuditEvent.objects.filter(organization=org).order_by("id").values_list("action", flat=True))
    assert events[0] == "organization.created"  # the log is kept, from its start
    assert events[-2:] == ["encryption_key.data_keys_shredded", "organization.deleted"]
    deleted = AuditEvent.objects.get(organization=org, action="organization.deleted")
    assert deleted.details["via"] == "manage.py" and deleted.details["reason"] == "contract ended"
    assert deleted.details["data_keys_shredded"] == 3 and deleted.details["rows"]["konnect_admin.ControlPlane"] == 1


def test_a_deleted_organization_is_a_tombstone(org, org_admin, login):
    run("delete_organization", "Acme", "--yes")
    with pytest.raises(CommandError, match="already deleted"):
        run("delete_organization", str(org.pk), "--yes")
    with pytest.raises(CommandError, match="was deleted"):
        run("reactivate_organization", str(org.pk))
    assert login(org_admin).get(reverse("dashboard")).status_code == 403  # "No organization yet"
    again = factories.make_organization("Acme")  # the name is free again
    assert again.pk != org.pk and Organization.objects.filter(name="Acme").count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():  # unique among organizations that are not deleted
        factories.make_organization("Acme")
