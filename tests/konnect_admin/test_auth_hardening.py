"""Log-in throttling, the hash an unknown account costs, and what removing a member takes away — each as the attack
it stops: password guessing (per account and per address), a CPU denial of service through the log-in form, and a
removed member whose roles and tokens come back."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from django.urls import reverse

from konnect_admin import services, tokens
from konnect_admin.authentication import client_ip
from konnect_admin.models import (
    AuditEvent,
    Membership,
    PersonalAccessToken,
    RoleAssignment,
    TeamMembership,
)
from konnect_admin.permissions import grants_for
from tests import factories

pytestmark = pytest.mark.django_db

ATTACKER_IP = "198.51.100.7"
OTHER_IP = "203.0.113.9"


@pytest.fixture(autouse=True)
def failure_limit(settings):
    settings.AXES_FAILURE_LIMIT = 10
    return 10


def log_in(client, email, password):
    return client.post(reverse("login"), {"username": email, "password": password})


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- lockout per account and per address ----------------------------------------------------------------


def test_the_eleventh_log_in_is_refused_even_with_the_right_password(client, org, other_org):
    ada = factories.make_user(org, email="ada@example.test")
    services.member_add(organization=other_org, user=ada, actor=None)
    answers = [log_in(client, "ada@example.test", f"guess-{n}").status_code for n in range(10)]
    assert answers == [200] * 9 + [429]

    response = log_in(client, "ada@example.test", factories.PASSWORD)
    assert response.status_code == 429 and not logged_in(client)
    assert response["Retry-After"] == str(15 * 60)
    page = response.content.decode()
    assert "Too many failed log-in attempts" in page and "Konnect Admin" in page  # the app's layout, not axes' text
    assert factories.PASSWORD not in page

    # The account is locked, not only this address.
    elsewhere = Client(REMOTE_ADDR=OTHER_IP)
    assert log_in(elsewhere, "ada@example.test", factories.PASSWORD).status_code == 429
    assert not logged_in(elsewhere)

    # Audited once per organization of the account and per address, not once per refused attempt.
    events = AuditEvent.objects.filter(action="login.locked_out", target_id=str(ada.pk))
    assert sorted((event.organization_id, event.details["ip_address"]) for event in events) == sorted(
        [(org.pk, "127.0.0.1"), (other_org.pk, "127.0.0.1"), (org.pk, OTHER_IP), (other_org.pk, OTHER_IP)]
    )
    assert {event.actor_label for event in events} == {"system"}


def test_case_and_spaces_do_not_give_an_account_fresh_attempts(client, org):
    factories.make_user(org, email="ada@example.test")
    for n in range(10):
        log_in(client, " ADA@Example.TEST" if n % 2 else "ada@example.test", f"guess-{n}")
    assert log_in(Client(REMOTE_ADDR=OTHER_IP), "ada@example.test", factories.PASSWORD).status_code == 429


def test_one_address_is_locked_out_whatever_account_it_tries(org):
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    answers = [log_in(attacker, f"nobody{n}@example.test", "guess").status_code for n in range(10)]
    assert answers[-1] == 429
    grace = factories.make_user(org, email="grace@example.test")

    assert log_in(attacker, "grace@example.test", factories.PASSWORD).status_code == 429
    assert not logged_in(attacker)
    # Grace herself, from her own address, is not locked: her account had no failures.
    own = Client(REMOTE_ADDR=OTHER_IP)
    assert log_in(own, "grace@example.test", factories.PASSWORD).status_code == 302 and logged_in(own)

    platform = AuditEvent.objects.get(action="login.locked_out", organization=None)
    assert platform.details["ip_address"] == ATTACKER_IP and platform.details["account"] == "unknown"
    assert "nobody" not in str(platform.details) + platform.target_label  # the typed names are not kept
    assert AuditEvent.objects.filter(action="login.locked_out", organization=org, target_id=str(grace.pk)).exists()


def test_a_successful_log_in_does_not_clear_the_address_count(org):
    """Otherwise an attacker with an account of their own logs in between guesses and never gets locked out."""
    factories.make_user(org, email="mallory@example.test")
    factories.make_user(org, email="victim@example.test")
    attacker = Client(REMOTE_ADDR=ATTACKER_IP)
    for n in range(9):
        log_in(attacker, "victim@example.test", f"guess-{n}")
    assert log_in(attacker, "mallory@example.test", factories.PASSWORD).status_code == 302
    assert log_in(Client(REMOTE_ADDR=ATTACKER_IP), "victim@example.test", "guess-9").status_code == 429


def test_client_address_behind_reverse_proxies(rf, settings):
    request = rf.post("/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5, 10.0.0.1")
    settings.LOGIN_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"  # no proxies trusted: the header is the client's own text
    settings.LOGIN_PROXY_COUNT = 2
    assert client_ip(request) == "203.0.113.5"  # what the outer proxy saw, not the spoofable left-most entry


# --- no password hash for unknown accounts ------------------------------------------------------------


class CountingMD5Hasher(MD5PasswordHasher):
    """The test suite's hasher, counting password hashes: hashing a new password and checking one against a stored
    hash (`verify` re-encodes) both run `encode` once."""

    calls = 0

    def encode(self, password, salt):
        CountingMD5Hasher.calls += 1
        return super().encode(password, salt)


def hashes_for(client, email, password) -> tuple[int, int]:
    CountingMD5Hasher.calls = 0
    status = log_in(client, email, password).status_code
    return status, CountingMD5Hasher.calls


def test_log_in_hashes_a_password_only_for_a_known_account_that_is_not_locked(client, org, settings):
    factories.make_user(org, email="ada@example.test")
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5Hasher"]
    assert hashes_for(client, "nobody@example.test", "guess") == (200, 0)
    assert hashes_for(client, "ada@example.test", "guess") == (200, 1)
    for n in range(8):
        log_in(client, "ada@example.test", f"guess-{n}")
    assert hashes_for(client, "ada@example.test", factories.PASSWORD) == (429, 0)


# --- removing a member ----------------------------------------------------------------------------------


@pytest.fixture
def leaving(org, control_plane):
    """A member with a team, a direct role, a personal access token and a data-plane token they issued."""
    user = factories.make_user(org, team="Control Plane Admin")
    factories.grant(user, org, "cp_viewer", control_plane)
    _pat, pat = tokens.personal_access_token_create(user=user, organization=org, name="laptop")
    _dp, dp = tokens.data_plane_token_create(actor=user, control_plane=control_plane, name="edge-1")
    return {"user": user, "pat": pat, "dp": dp}


def test_removing_a_member_revokes_roles_teams_and_tokens_and_re_adding_grants_nothing(
    login, client, org, org_admin, control_plane, leaving
):
    user = leaving["user"]
    membership = Membership.objects.get(organization=org, user=user)
    stores = f"/api/us/v2/control-planes/{control_plane.pk}/config-stores"
    assert client.get(stores, HTTP_AUTHORIZATION=f"Bearer {leaving['pat']}").status_code == 200

    response = login(org_admin).post(reverse("member_remove", args=[membership.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(organization=org, user=user).exists()
    assert not RoleAssignment.objects.filter(organization=org, user=user).exists()
    assert not TeamMembership.objects.filter(team__organization=org, user=user).exists()
    assert tokens.personal_access_token_authenticate(leaving["pat"]) is None
    api = Client().get(stores, HTTP_AUTHORIZATION=f"Bearer {leaving['pat']}")
    assert api.status_code == 401 and api["Content-Type"] == "application/problem+json"
    # A departing Control Plane Admin keeps no data-plane token: with one they could resolve vault secrets.
    assert tokens.data_plane_token_authenticate(leaving["dp"]) is None
    resolve = Client().post("/api/us/v1/vault/resolve", {"references": ["{vault://pay/x}"]},
                            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {leaving['dp']}")
    assert resolve.status_code == 401
    event = AuditEvent.objects.get(action="member.removed", organization=org)
    assert event.actor == org_admin and event.target_id == str(user.pk)
    assert event.details["access_tokens_revoked"] == 1 and event.details["teams"] == ["Control Plane Admin"]
    assert event.details["data_plane_tokens_revoked"] == 1 and event.details["data_plane_tokens_kept"] == 0

    services.member_add(organization=org, user=user, actor=org_admin)
    user.refresh_from_db()
    grants = grants_for(user, org)
    assert grants.is_member and not grants.all_roles
    assert tokens.personal_access_token_authenticate(leaving["pat"]) is None


def test_a_membership_deleted_behind_the_service_leaves_nothing_to_come_back(org, leaving):
    user = leaving["user"]
    Membership.objects.filter(organization=org, user=user).delete()  # e.g. by a script or a cascade
    assert tokens.personal_access_token_authenticate(leaving["pat"]) is None  # no longer a member: 401
    services.member_add(organization=org, user=user, actor=None)
    assert not grants_for(user, org).all_roles
    assert tokens.personal_access_token_authenticate(leaving["pat"]) is None
    assert not PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()


def test_an_admin_cannot_remove_themself(login, org, org_admin):
    membership = Membership.objects.get(organization=org, user=org_admin)
    client = login(org_admin)
    response = client.post(reverse("member_remove", args=[membership.pk]), follow=True)
    assert "You cannot remove yourself" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert not AuditEvent.objects.filter(action="member.removed").exists()


@pytest.mark.parametrize("role", ["org_admin_read_only", "cp_admin_team", "member"])
def test_only_organization_admins_remove_members(login, org, leaving, role):
    membership = Membership.objects.get(organization=org, user=leaving["user"])
    response = login(factories.make_role_user(org, role)).post(reverse("member_remove", args=[membership.pk]))
    assert response.status_code in (403, 404)
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert tokens.personal_access_token_authenticate(leaving["pat"]) is not None


def test_another_organizations_member_is_not_found(login, org_admin, other_org):
    stranger = factories.make_user(other_org)
    membership = Membership.objects.get(organization=other_org, user=stranger)
    assert login(org_admin).post(reverse("member_remove", args=[membership.pk])).status_code == 404
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_members_page_offers_removal_to_admins_but_not_for_themselves(login, org, org_admin, leaving):
    page = login(org_admin).get(reverse("member_list")).content.decode()
    own = Membership.objects.get(organization=org, user=org_admin)
    theirs = Membership.objects.get(organization=org, user=leaving["user"])
    assert reverse("member_remove", args=[theirs.pk]) in page
    assert reverse("member_remove", args=[own.pk]) not in page
    reader = factories.make_role_user(org, "org_admin_read_only")
    assert "member_remove" not in page and reverse("member_remove", args=[theirs.pk]) not in (
        login(reader).get(reverse("member_list")).content.decode()
    )


def test_removal_over_htmx_reloads_the_members_page(login, org, org_admin, leaving):
    membership = Membership.objects.get(organization=org, user=leaving["user"])
    response = login(org_admin).post(reverse("member_remove", args=[membership.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("member_list")
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_removal_asks_first_and_counts_the_data_plane_tokens_they_created(login, org, org_admin, control_plane, leaving):
    """The Members page links to a confirmation (no JavaScript needed) that says what the removal revokes."""
    other = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="admins-own")[1]
    membership = Membership.objects.get(organization=org, user=leaving["user"])
    url = reverse("member_remove", args=[membership.pk])
    client = login(org_admin)
    members = client.get(reverse("member_list")).content.decode()
    assert f'href="{url}"' in members

    page = client.get(url)
    body = page.content.decode()
    assert page.status_code == 200 and "<html" in body and leaving["user"].email in body
    assert "Keep the 1 data-plane token they created" in body
    assert 'name="keep_data_plane_tokens"' in body and " checked" not in body  # revoked unless kept
    assert f'method="post" action="{url}"' in body
    assert Membership.objects.filter(pk=membership.pk).exists()  # asking removes nothing
    assert tokens.data_plane_token_authenticate(leaving["dp"]) is not None

    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and 'name="keep_data_plane_tokens"' in fragment

    client.post(url)  # a plain form POST, checkbox unticked: revoked
    assert tokens.data_plane_token_authenticate(leaving["dp"]) is None
    assert tokens.data_plane_token_authenticate(other) is not None  # another person's token is not theirs


def test_removal_can_keep_the_data_plane_tokens_for_the_gateways_that_use_them(login, org, org_admin, leaving):
    membership = Membership.objects.get(organization=org, user=leaving["user"])
    response = login(org_admin).post(reverse("member_remove", args=[membership.pk]),
                                     {"keep_data_plane_tokens": "on"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("member_list")
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert tokens.data_plane_token_authenticate(leaving["dp"]) is not None
    assert tokens.personal_access_token_authenticate(leaving["pat"]) is None
    event = AuditEvent.objects.get(action="member.removed", organization=org)
    assert event.details["data_plane_tokens_revoked"] == 0 and event.details["data_plane_tokens_kept"] == 1


def test_member_remove_revokes_only_their_live_tokens_of_this_organization(org, org_admin, other_org,
                                                                          other_org_admin, control_plane, leaving):
    user = leaving["user"]
    services.member_add(organization=other_org, user=user, actor=other_org_admin, team="Control Plane Admin")
    elsewhere = tokens.data_plane_token_create(actor=user, control_plane=factories.make_control_plane(other_org),
                                               name="theirs-elsewhere")[1]
    services.member_remove(organization=org, actor=org_admin, user=user)
    assert tokens.data_plane_token_authenticate(leaving["dp"]) is None
    assert tokens.data_plane_token_authenticate(elsewhere) is not None  # another organization's business


@pytest.mark.parametrize("role", ["org_admin_read_only", "cp_admin_team", "member"])
def test_only_organization_admins_see_the_removal_confirmation(login, org, leaving, role):
    membership = Membership.objects.get(organization=org, user=leaving["user"])
    response = login(factories.make_role_user(org, role)).get(reverse("member_remove", args=[membership.pk]))
    assert response.status_code in (403, 404) and leaving["user"].email not in response.content.decode()
