"""The platform operator's console (/platform-admin/) has no back door into a tenant (DESIGN §2).

Every registered ModelAdmin and every admin action must have a rule in RULES below, so a new registration or a
new action fails here until someone decides what the operator may do with it. The other tests are the attacks:
an operator (a Django superuser) granting itself membership or a role, moving a control plane to another
organization, deleting audit events, setting a customer's password — and the legitimate operator actions, each
of which must leave an event naming the operator in the tenant's own audit log.
"""

import re
from typing import NamedTuple

import pytest
from django.contrib import admin
from django.contrib.admin.options import ActionLocation
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from konnect_admin import services, system_accounts, tokens
from konnect_admin.models import (
    AuditEvent,
    ControlPlane,
    DataPlaneToken,
    Membership,
    Organization,
    PersonalAccessToken,
    Role,
    RoleAssignment,
    SystemAccountAccessToken,
    Team,
    TeamMembership,
    User,
)
from konnect_admin.models.audit import AuditEventImmutable
from tests import factories

pytestmark = pytest.mark.django_db

OPERATOR_PASSWORD = "operator-long-password-1"  # noqa: S105


class Rule(NamedTuple):
    permissions: frozenset[str]  # of add / change / delete / view
    actions: frozenset[str] = frozenset()


READ = Rule(frozenset({"view"}))

#: What the platform operator may do with each registered model. Adding an admin registration or an action
#: means adding its rule here — and if the rule gives more than "view", a service that audits in the tenant log.
RULES: dict[str, Rule] = {
    "konnect_admin.organization": Rule(frozenset({"view", "add"}), frozenset({"suspend", "reactivate"})),
    "konnect_admin.user": Rule(frozenset({"view"}), frozenset({"send_password_reset", "deactivate", "reactivate"})),
    "konnect_admin.team": READ,
    "konnect_admin.roleassignment": READ,
    "konnect_admin.controlplane": READ,
    "konnect_admin.auditevent": READ,
    "konnect_admin.personalaccesstoken": Rule(frozenset({"view"}), frozenset({"force_revoke"})),
    "konnect_admin.dataplanetoken": Rule(frozenset({"view"}), frozenset({"force_revoke"})),
    "konnect_admin.systemaccountaccesstoken": Rule(frozenset({"view"}), frozenset({"force_revoke"})),
    "encryption_keys.encryptionkey": READ,
    "encryption_keys.datakey": READ,
    "encryption_keys.kmscall": READ,
    "encryption_keys.platformkeyhealth": READ,
    "debugger.debugsession": READ,
    "debugger.trace": READ,
    "debugger.span": READ,
    "debugger.payloadcapture": READ,
    "debugger.requestlog": READ,
    "debugger.blob": READ,
    "vault.configstore": READ,
    "vault.secret": READ,
    "vault.vault": READ,
    "vault.vaultprotection": READ,
    "vault.secretresolution": READ,
    "django_tasks_database.dbtaskresult": READ,  # the task queue: ids, counts, failures' tracebacks
}

#: Site-wide actions; delete_selected must be filtered out of every model above (none may delete).
SITE_ACTIONS = {"delete_selected"}


def superuser_request(user: User):
    request = RequestFactory().get("/platform-admin/")
    request.user = user
    return request


def granted(model_admin, request, obj=None) -> set[str]:
    checks = {
        "add": model_admin.has_add_permission(request) if not isinstance(model_admin, admin.options.InlineModelAdmin)
        else model_admin.has_add_permission(request, obj),
        "change": model_admin.has_change_permission(request, obj),
        "delete": model_admin.has_delete_permission(request, obj),
        "view": model_admin.has_view_permission(request, obj),
    }
    return {name for name, allowed in checks.items() if allowed}


@pytest.fixture
def operator_user(db):
    return User.objects.create_superuser(email="ops@platform.test", password=OPERATOR_PASSWORD)


@pytest.fixture
def operator(client, operator_user):
    client.force_login(operator_user)
    return client


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def run_action(client, model, action: str, objects, **extra):
    data = {"action": action, "index": 0, "_selected_action": [str(o.pk) for o in objects], **extra}
    return client.post(url(model, "changelist"), data)


def operator_events(organization, action: str, operator_user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=organization, action=action, actor=operator_user))


# --- the rule table ------------------------------------------------------------------------------------------


def test_every_registered_model_admin_has_a_rule():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered - RULES.keys() == set(), "a new admin registration needs a rule in RULES"
    assert RULES.keys() - registered == set(), "a rule for a model that is no longer registered"
    assert "auth.group" not in registered  # operators are superusers; groups would hand out admin rights


def test_every_model_admin_grants_exactly_its_rule(operator_user):
    request = superuser_request(operator_user)
    for model, model_admin in admin.site._registry.items():
        rule = RULES[model._meta.label_lower]
        assert granted(model_admin, request) == rule.permissions, model._meta.label_lower
        for inline in model_admin.get_inline_instances(request, model.objects.first()):
            assert granted(inline, request) <= {"view"}, f"{model._meta.label_lower} inline {inline.model}"


def test_every_admin_action_has_a_rule_and_needs_the_operate_permission(operator_user):
    assert set(admin.site._actions) == SITE_ACTIONS
    request = superuser_request(operator_user)
    for model, model_admin in admin.site._registry.items():
        rule = RULES[model._meta.label_lower]
        actions = model_admin.get_actions(request)
        assert set(actions) == rule.actions, model._meta.label_lower
        # Django 6.1's change-form actions: none (each would need its own rule and attack test).
        assert model_admin.get_actions(request, action_location=ActionLocation.CHANGE_FORM) == {}
        for name, action in actions.items():
            assert list(getattr(action.func, "allowed_permissions", [])) == ["operate"], f"{model_admin}.{name}"


def test_staff_with_view_permissions_gets_no_action_and_cannot_create(client, org):
    staff = User.objects.create_user(email="staff@platform.test", password="x-long-password", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(staff)
    request = superuser_request(staff)
    for model_admin in admin.site._registry.values():
        assert model_admin.get_actions(request) == {}
    assert client.get(url(Organization, "changelist")).status_code == 200
    assert client.get(url(Organization, "add")).status_code == 403
    run_action(client, Organization, "suspend", [org])
    org.refresh_from_db()
    assert org.state == Organization.State.ACTIVE
    assert not AuditEvent.objects.filter(action="organization.suspended").exists()


# --- the attacks ---------------------------------------------------------------------------------------------


def test_operator_cannot_add_themself_as_member_through_the_organization_inline(operator, operator_user, org):
    forged = {
        "name": org.name, "retention_days": org.retention_days, "state": org.state,
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": str(operator_user.pk), "memberships-0-organization": str(org.pk),
    }
    response = operator.post(url(Organization, "change", org.pk), forged)
    assert not Membership.objects.filter(user=operator_user).exists()
    assert response.status_code == 403
    body = operator.get(url(Organization, "change", org.pk)).content.decode()
    assert 'name="memberships-0-user"' not in body and 'name="memberships-__prefix__-user"' not in body
    assert 'name="memberships-MAX_NUM_FORMS" value="0"' in body  # the inline offers no row to add


def test_operator_cannot_grant_itself_a_role_or_a_team(operator, operator_user, org, control_plane):
    for role, cp in ((Role.ORG_ADMIN, ""), (Role.CP_ADMIN, str(control_plane.pk))):
        response = operator.post(url(RoleAssignment, "add"), {
            "organization": str(org.pk), "user": str(operator_user.pk), "role": role, "control_plane": cp})
        assert not RoleAssignment.objects.filter(user=operator_user).exists()
        assert response.status_code == 403
    assert operator.get(url(RoleAssignment, "add")).status_code == 403

    team = Team.objects.get(organization=org, predefined_role=Role.ORG_ADMIN)
    response = operator.post(url(Team, "change", team.pk), {
        "organization": str(org.pk), "name": team.name, "predefined_role": team.predefined_role,
        "description": team.description,
        "teammembership_set-TOTAL_FORMS": "1", "teammembership_set-INITIAL_FORMS": "0",
        "teammembership_set-0-user": str(operator_user.pk), "teammembership_set-0-team": str(team.pk)})
    assert not TeamMembership.objects.filter(user=operator_user).exists()
    assert response.status_code == 403
    assert operator.get(url(Team, "add")).status_code == 403


def test_operator_cannot_move_a_control_plane_to_another_organization(operator, control_plane, other_org):
    response = operator.post(url(ControlPlane, "change", control_plane.pk), {
        "organization": str(other_org.pk), "region": "eu", "name": control_plane.name,
        "description": control_plane.description, "cluster_type": control_plane.cluster_type, "labels": "{}"})
    control_plane.refresh_from_db()
    assert (control_plane.organization.name, control_plane.region) == ("Acme", "us")
    assert response.status_code == 403
    page = operator.get(url(ControlPlane, "change", control_plane.pk)).content.decode()
    assert 'name="organization"' not in page and 'name="region"' not in page
    assert operator.get(url(ControlPlane, "add")).status_code == 403
    assert operator.post(url(ControlPlane, "delete", control_plane.pk), {"post": "yes"}).status_code == 403
    assert ControlPlane.objects.filter(pk=control_plane.pk).exists()


def test_operator_cannot_delete_audit_events(operator, org):
    events = list(AuditEvent.objects.filter(organization=org))
    assert events  # organization.created, member.added, …
    response = run_action(operator, AuditEvent, "delete_selected", events, post="yes")
    assert AuditEvent.objects.filter(organization=org).count() == len(events)
    assert response.status_code == 200 and "Are you sure" not in response.content.decode()  # not offered
    assert operator.post(url(AuditEvent, "delete", events[0].pk), {"post": "yes"}).status_code == 403
    response = operator.post(url(AuditEvent, "change", events[0].pk), {"action": "forged"})
    assert response.status_code == 403
    assert AuditEvent.objects.filter(organization=org).count() == len(events)
    assert AuditEvent.objects.get(pk=events[0].pk).action == events[0].action


def test_audit_events_cannot_be_deleted_or_changed_through_the_orm(org):
    event = AuditEvent.objects.filter(organization=org).first()
    count = AuditEvent.objects.count()
    with pytest.raises(AuditEventImmutable):
        event.delete()
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.filter(organization=org).delete()
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditEventImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing.happened")
    with pytest.raises(AuditEventImmutable):
        event.action = "nothing.happened"
        event.save()
    with pytest.raises(AuditEventImmutable), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["action"])
    assert AuditEvent.objects.count() == count
    assert AuditEvent.objects.get(pk=event.pk).action != "nothing.happened"


def test_the_deliberate_paths_still_work_user_deletion_keeps_the_event_and_org_deletion_takes_its_log(org):
    """Deleting a user keeps its events (actor_label says who); a bare `Organization.delete()` takes that
    organization's log with it. Both go through Django's deletion collector. (The app never deletes the row:
    `delete_organization` keeps it as a tombstone with its log — tests/konnect_admin/test_organization_lifecycle.py.)"""
    user = factories.make_user(org)
    event = services.audit_record(actor=user, organization=org, action="probe.made", target=org)
    user.delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor_id is None and event.actor_label == user.email
    org.delete()
    assert not AuditEvent.objects.filter(organization_id=org.pk).exists()


def test_operator_cannot_set_a_customers_password_or_permissions(operator, org):
    customer = factories.make_user(org, email="customer@acme.test")
    password_url = f"{url(User, 'change', customer.pk).removesuffix('change/')}password/"
    new = {"password1": "operator-chose-this-1", "password2": "operator-chose-this-1", "usable_password": "true"}
    response = operator.post(password_url, new)
    forged = {"email": "attacker@evil.test", "first_name": "", "last_name": "", "is_active": "on", "is_staff": "on",
              "is_superuser": "on", "password": "pbkdf2_sha256$1$x$y", "date_joined_0": "2026-01-01",
              "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}
    change = operator.post(url(User, "change", customer.pk), forged)
    add = operator.post(url(User, "add"), {"email": "new@x.test", **new})
    customer.refresh_from_db()
    assert customer.check_password(factories.PASSWORD) and not customer.check_password("operator-chose-this-1")
    assert (customer.email, customer.is_staff, customer.is_superuser) == ("customer@acme.test", False, False)
    assert not User.objects.filter(email__in=["attacker@evil.test", "new@x.test"]).exists()
    assert response.status_code in (302, 403, 404) and change.status_code == 403 and add.status_code == 403

    with pytest.raises(NoReverseMatch):
        reverse("admin:konnect_admin_user_password_change", args=[customer.pk])
    assert 'name="password1"' not in operator.get(password_url, follow=True).content.decode()
    page = operator.get(url(User, "change", customer.pk)).content.decode()
    for field in ("password", "password1", "is_superuser", "is_staff", "groups", "user_permissions", "email"):
        assert f'name="{field}"' not in page
    assert operator.get(url(User, "add")).status_code == 403


def test_vault_and_debugger_rows_cannot_be_deleted(operator, org_admin, control_plane):
    from vault import services as vault_services
    from vault.models import ConfigStore

    store = vault_services.config_store_create(actor=org_admin, control_plane=control_plane, name="prod")
    assert operator.post(url(ConfigStore, "delete", store.pk), {"post": "yes"}).status_code == 403
    run_action(operator, ConfigStore, "delete_selected", [store], post="yes")
    assert ConfigStore.objects.filter(pk=store.pk).exists()


# --- what the operator legitimately does, audited in the tenant's log ------------------------------------------


def test_operator_suspends_and_reactivates_an_organization_in_the_tenants_audit_log(operator, operator_user, org,
                                                                                     other_org):
    response = run_action(operator, Organization, "suspend", [org], reason="abuse report #41")
    assert response.status_code == 302
    org.refresh_from_db()
    other_org.refresh_from_db()
    assert org.state == Organization.State.INACTIVE and other_org.state == Organization.State.ACTIVE
    [event] = operator_events(org, "organization.suspended", operator_user)
    assert event.details == {"via": "platform-admin", "reason": "abuse report #41"}
    assert event.actor_label == "ops@platform.test" and event.target_id == str(org.pk)

    run_action(operator, Organization, "suspend", [org])  # already suspended: nothing changes, nothing logged
    assert len(operator_events(org, "organization.suspended", operator_user)) == 1

    run_action(operator, Organization, "reactivate", [org])
    org.refresh_from_db()
    assert org.state == Organization.State.ACTIVE
    assert len(operator_events(org, "organization.reactivated", operator_user)) == 1
    assert not AuditEvent.objects.filter(organization=other_org, actor=operator_user).exists()


def test_operator_services_refuse_a_non_operator(org, org_admin):
    for service in (services.organization_suspend, services.organization_reactivate):
        with pytest.raises(PermissionDenied):
            service(organization=org, actor=org_admin)
    token, _ = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    with pytest.raises(PermissionDenied):
        tokens.token_force_revoke(token=token, operator=org_admin)
    with pytest.raises(PermissionDenied):
        services.user_deactivate(user=org_admin, actor=org_admin)
    org.refresh_from_db()
    org_admin.refresh_from_db()
    assert org.state == Organization.State.ACTIVE and org_admin.is_active
    token.refresh_from_db()
    assert token.revoked_at is None


def test_operator_creates_an_organization_through_the_service(operator, operator_user):
    page = operator.get(url(Organization, "add")).content.decode()
    assert 'name="name"' in page and 'name="retention_days"' in page
    assert "memberships-TOTAL_FORMS" not in page and 'name="state"' not in page
    response = operator.post(url(Organization, "add"), {"name": "Initech", "retention_days": "7"})
    assert response.status_code == 302
    org = Organization.objects.get(name="Initech")
    assert org.retention_days == 7 and org.state == Organization.State.ACTIVE
    assert set(org.teams.values_list("predefined_role", flat=True)) == {
        Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY, Role.CP_ADMIN}
    assert not org.memberships.exists()  # the first admin is invited through the app, never added here
    [event] = operator_events(org, "organization.created", operator_user)
    assert event.details == {"via": "platform-admin"}


def test_operator_force_revokes_tokens_in_the_tenants_audit_log(operator, operator_user, org, org_admin,
                                                               control_plane):
    factories.grant(org_admin, org, Role.CP_ADMIN, control_plane)
    pat, pat_text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    dpt, dpt_text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="gw")
    account = system_accounts.system_account_create(organization=org, actor=org_admin, name="automation")
    spat, spat_text = system_accounts.system_account_token_create(account=account, actor=org_admin, name="ci")
    for model, token in ((PersonalAccessToken, pat), (DataPlaneToken, dpt), (SystemAccountAccessToken, spat)):
        for page in (operator.get(url(model, "changelist")), operator.get(url(model, "change", token.pk))):
            body = page.content.decode()
            assert page.status_code == 200 and token.hint in body
            assert token.digest not in body and 'name="name"' not in body
    assert tokens.personal_access_token_authenticate(pat_text) is not None

    run_action(operator, PersonalAccessToken, "force_revoke", [pat])
    run_action(operator, DataPlaneToken, "force_revoke", [dpt])
    run_action(operator, SystemAccountAccessToken, "force_revoke", [spat])
    assert system_accounts.system_account_token_authenticate(spat_text) is None
    [spat_event] = operator_events(org, "system_account.token_revoked", operator_user)
    assert spat_event.details == {"via": "platform-admin", "forced": True} and spat_event.target_id == str(spat.pk)

    assert tokens.personal_access_token_authenticate(pat_text) is None
    assert tokens.data_plane_token_authenticate(dpt_text) is None
    [pat_event] = operator_events(org, "access_token.revoked", operator_user)
    [dpt_event] = operator_events(org, "data_plane_token.revoked", operator_user)
    assert pat_event.details == dpt_event.details == {"via": "platform-admin", "forced": True}
    assert (pat_event.target_id, dpt_event.target_id) == (str(pat.pk), str(dpt.pk))


def test_operator_sends_a_reset_link_to_the_users_own_address_and_never_sees_it(operator, operator_user, org,
                                                                                other_org):
    customer = factories.make_user(org, email="wile@acme.test")
    services.member_add(organization=other_org, user=customer, actor=None)
    response = run_action(operator, User, "send_password_reset", [customer])
    assert response.status_code == 302

    [message] = mail.outbox
    assert message.to == ["wile@acme.test"]
    link = re.search(r"https?://testserver(/password-reset/\S+/)", message.body).group(1)
    listing = operator.get(response["Location"]).content.decode()
    assert link not in listing and link.split("/")[-2] not in listing  # the token is for the user's eyes only
    for organization in (org, other_org):
        [event] = operator_events(organization, "user.password_reset_sent", operator_user)
        assert event.details == {"via": "platform-admin"} and event.target_id == str(customer.pk)
        assert link.split("/")[-2] not in str(event.details)

    operator.logout()
    form = operator.get(link, follow=True)
    assert form.status_code == 200 and 'name="new_password1"' in form.content.decode()
    done = operator.post(form.redirect_chain[-1][0], {"new_password1": "wile-chose-this-9",
                                                      "new_password2": "wile-chose-this-9"})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    customer.refresh_from_db()
    assert customer.check_password("wile-chose-this-9")


def test_operator_deactivates_and_reactivates_a_user_in_every_org_log(operator, operator_user, org, other_org,
                                                                      client):
    customer = factories.make_user(org)
    services.member_add(organization=other_org, user=customer, actor=None)
    run_action(operator, User, "deactivate", [customer, operator_user])  # never locks the operator out
    customer.refresh_from_db()
    operator_user.refresh_from_db()
    assert not customer.is_active and operator_user.is_active
    for organization in (org, other_org):
        assert len(operator_events(organization, "user.deactivated", operator_user)) == 1
    run_action(operator, User, "reactivate", [customer])
    customer.refresh_from_db()
    assert customer.is_active
    assert len(operator_events(org, "user.reactivated", operator_user)) == 1
