"""Invitations: an Organization Admin invites by e-mail; the link works once, expires, dies on revoke and resend."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from konnect_admin import invitations
from konnect_admin.models import AuditEvent, Invitation, Membership, Team, User
from konnect_admin.models.tokens import token_digest
from konnect_admin.permissions import Action, can
from tests import factories

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-new-password-77"  # noqa: S105


def team(org, name="Control Plane Admin") -> Team:
    return Team.objects.get(organization=org, name=name)


def link_in(message) -> str:
    """The path of the invitation link in an e-mail (absolute in the body)."""
    return re.search(r"https?://testserver(/invitations/\S+/)", message.body).group(1)


def invite(client, *emails, teams=()):
    return client.post(reverse("invitation_create"), {"emails": "\n".join(emails), "teams": [t.pk for t in teams]})


ACCEPT = "/invitations/accept/"


def open_link(client, path):
    """Follow the e-mailed link: its token moves into the session and the browser lands on ACCEPT."""
    response = client.get(path, follow=True)
    assert response.redirect_chain == [(ACCEPT, 302)]
    return response


def sign_up(client, **overrides):
    data = {"first_name": "Nia", "last_name": "New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    return client.post(ACCEPT, data | overrides)


def test_an_admin_invites_a_new_person_who_signs_up_and_lands_in_the_org_with_the_teams(client, login, org, org_admin):
    admin = login(org_admin)
    response = invite(admin, "nia@new.test", teams=[team(org)])
    assert response.status_code == 302
    page = admin.get(response["Location"]).content.decode()
    assert "Invitation sent to nia@new.test." in page and "nia@new.test" in page.split("Pending invitations")[1]

    [message] = mail.outbox
    assert message.to == ["nia@new.test"] and org.name in message.subject
    path = link_in(message)
    token = path.split("/")[-2]
    invitation = Invitation.objects.get(email="nia@new.test")
    assert invitation.digest == token_digest(token) and token not in str(Invitation.objects.values().get())
    assert invitation.expires_at - invitation.sent_at == timedelta(hours=72)

    admin.logout()
    form = open_link(client, path)
    body = form.content.decode()
    assert form.status_code == 200 and 'name="password1"' in body and "Control Plane Admin" in body
    assert token not in body
    mismatch = sign_up(client, password2="something-else-entirely")
    assert mismatch.status_code == 400 and "The two passwords differ." in mismatch.content.decode()
    assert not User.objects.filter(email="nia@new.test").exists()

    joined = sign_up(client)
    assert joined.status_code == 302 and joined["Location"] == reverse("dashboard")
    user = User.objects.get(email="nia@new.test")
    assert user.check_password(NEW_PASSWORD) and user.get_full_name() == "Nia New"
    assert Membership.objects.filter(organization=org, user=user).exists()
    assert list(user.teams.filter(organization=org)) == [team(org)]
    assert can(user, Action.CONTROL_PLANE_ADMIN, org) and not can(user, Action.MEMBERS_MANAGE, org)
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200 and f"Welcome to {org.name}." in dashboard.content.decode()
    event = AuditEvent.objects.get(organization=org, action="invitation.accepted")
    assert event.actor == user and event.details == {"email": "nia@new.test", "teams": ["Control Plane Admin"]}


def test_someone_with_an_account_logs_in_and_joins(client, login, org, other_org, org_admin):
    existing = factories.make_user(other_org, email="sam@elsewhere.test")
    invitation = invitations.invitation_create(organization=org, actor=org_admin, email="Sam@elsewhere.test",
                                               teams=[team(org, "Organization Admin")], base_url="http://testserver")
    path = link_in(mail.outbox[0])
    page = open_link(client, path).content.decode()
    assert "Log in to accept" in page and 'name="password1"' not in page and f"?next={ACCEPT}" in page
    assert sign_up(client).status_code == 200  # no account is made for an address that has one
    assert User.objects.filter(email__iexact="sam@elsewhere.test").count() == 1

    client.post(reverse("login"), {"username": "sam@elsewhere.test", "password": factories.PASSWORD, "next": ACCEPT})
    join = client.get(ACCEPT).content.decode()  # the token stayed in the session across the log-in
    assert f"Join {org.name}" in join
    assert client.post(ACCEPT).status_code == 302
    invitation.refresh_from_db()
    assert invitation.accepted_by == existing and invitation.accepted_at is not None
    assert can(existing, Action.MEMBERS_MANAGE, org)
    assert client.session["organization_id"] == str(org.pk)


def test_a_link_for_another_address_does_not_let_a_signed_in_person_join(login, org, org_admin):
    invitations.invitation_create(organization=org, actor=org_admin, email="right@person.test", teams=[],
                                  base_url="http://testserver")
    path = link_in(mail.outbox[0])
    intruder = login(factories.make_user(email="wrong@person.test"))
    assert "Log out, then open the link" in open_link(intruder, path).content.decode()
    intruder.post(ACCEPT)
    assert not Membership.objects.filter(organization=org, user__email="wrong@person.test").exists()
    assert Invitation.objects.get().accepted_at is None


def test_a_used_link_cannot_be_used_again(client, org, org_admin):
    invitations.invitation_create(organization=org, actor=org_admin, email="once@new.test", teams=[],
                                  base_url="http://testserver")
    path = link_in(mail.outbox[0])
    open_link(client, path)
    assert sign_up(client).status_code == 302
    client.logout()
    again = open_link(client, path)
    assert again.status_code == 410 and "Invitation already used" in again.content.decode()
    assert sign_up(client, first_name="Mallory").status_code == 410
    assert User.objects.filter(email="once@new.test").get().first_name == "Nia"


def test_an_expired_link_shows_a_clear_page(client, org, org_admin, settings):
    settings.INVITATION_TTL_HOURS = 1
    invitation = invitations.invitation_create(organization=org, actor=org_admin, email="late@new.test", teams=[],
                                               base_url="http://testserver")
    assert invitation.expires_at - invitation.sent_at == timedelta(hours=1)
    path = link_in(mail.outbox[0])
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for response in (open_link(client, path), sign_up(client)):
        assert response.status_code == 410 and "Invitation expired" in response.content.decode()
    assert not User.objects.filter(email="late@new.test").exists()
    unknown = open_link(client, reverse("invitation_accept", args=["not-a-real-token"]))
    assert unknown.status_code == 404 and "Invitation not valid" in unknown.content.decode()


def test_revoke_kills_the_link(client, login, org, org_admin):
    invitation = invitations.invitation_create(organization=org, actor=org_admin, email="gone@new.test", teams=[],
                                               base_url="http://testserver")
    path = link_in(mail.outbox[0])
    admin = login(org_admin)
    response = admin.post(reverse("invitation_revoke", args=[invitation.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="invitations"' in body
    assert "Invitation of gone@new.test revoked" in body and "No pending invitations." in body
    admin.logout()
    assert open_link(client, path).status_code == 410 and sign_up(client).status_code == 410
    assert AuditEvent.objects.filter(organization=org, action="invitation.revoked", actor=org_admin).count() == 1


def test_resend_sends_a_new_link_and_the_old_one_dies(client, login, org, org_admin):
    invitation = invitations.invitation_create(organization=org, actor=org_admin, email="again@new.test", teams=[],
                                               base_url="http://testserver")
    old_path = link_in(mail.outbox[0])
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    admin = login(org_admin)
    response = admin.post(reverse("invitation_resend", args=[invitation.pk]))  # without JS: redirect + message
    assert response.status_code == 302
    assert "earlier link no longer works" in admin.get(response["Location"]).content.decode()
    new_path = link_in(mail.outbox[1])
    assert new_path != old_path
    admin.logout()
    assert open_link(client, old_path).status_code == 404
    open_link(client, new_path)
    assert sign_up(client).status_code == 302  # an expired invitation resent works again
    assert Membership.objects.filter(organization=org, user__email="again@new.test").exists()


def test_invite_form_refuses_members_duplicates_and_bad_addresses(login, org, org_admin, other_org):
    admin = login(org_admin)
    bad = invite(admin, "not-an-address")
    assert bad.status_code == 400 and "Not an email address: not-an-address." in bad.content.decode()
    invite(admin, "dup@new.test")
    response = invite(admin, org_admin.email, "dup@new.test", "fresh@new.test")
    page = admin.get(response["Location"]).content.decode()
    assert "Invitation sent to fresh@new.test." in page
    assert "is already a member of" in page and "already has a pending invitation" in page
    assert [m.to for m in mail.outbox] == [["dup@new.test"], ["fresh@new.test"]]
    foreign = invite(admin, "x@new.test", teams=[team(other_org)])
    assert foreign.status_code == 400 and not Invitation.objects.filter(email="x@new.test").exists()


def test_only_organization_admins_invite(login, org):
    reader = factories.make_role_user(org, "org_admin_read_only")
    assert invite(login(reader), "x@new.test").status_code == 403
    page = login(reader).get(reverse("member_list")).content.decode()
    assert "Invite people" not in page and not mail.outbox


def test_an_invitation_to_a_suspended_organization_waits(client, org, org_admin):
    invitations.invitation_create(organization=org, actor=org_admin, email="wait@new.test", teams=[],
                                  base_url="http://testserver")
    path = link_in(mail.outbox[0])
    org.state = org.State.INACTIVE
    org.save()
    response = open_link(client, path)
    assert response.status_code == 410 and "not available" in response.content.decode()
    assert sign_up(client).status_code == 410
    assert not User.objects.filter(email="wait@new.test").exists()


def test_members_page_lists_people_teams_roles_and_pending_invitations(login, org, org_admin, control_plane):
    viewer = factories.make_role_user(org, "cp_viewer", control_plane)
    invitations.invitation_create(organization=org, actor=org_admin, email="soon@new.test",
                                  teams=[team(org)], base_url="http://testserver")
    page = login(org_admin).get(reverse("member_list")).content.decode()
    people = page.split('id="people"')[1].split('id="invite"')[0]
    assert viewer.email in people and "Control Plane Viewer on payments" in people
    assert "Organization Admin" in people and f'aria-label="Remove from organization: {viewer.email}"' in people
    assert 'Member <select' not in page and "<label for=\"id_user\">Person" in page  # plain labels
    pending = page.split('id="invitations"')[1]
    assert "soon@new.test" in pending and "Control Plane Admin" in pending and org_admin.email in pending
    assert 'class="messages"' not in page.split("<main")[0]  # messages live in the content column


def test_team_membership_from_the_members_page_says_what_happened(login, org, org_admin):
    person = factories.make_user(org)
    admin = login(org_admin)
    response = admin.post(reverse("team_membership"), {"user": person.pk, "team": team(org).pk, "member": "on"})
    assert f"{person.email} added to Control Plane Admin." in admin.get(response["Location"]).content.decode()
    response = admin.post(reverse("team_membership"), {"user": person.pk, "team": team(org).pk})
    assert f"{person.email} removed from Control Plane Admin." in admin.get(response["Location"]).content.decode()
    assert not person.teams.exists()
