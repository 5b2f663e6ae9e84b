import pytest
from django.urls import reverse

from konnect_admin.models import AuditEvent, ControlPlane, RoleAssignment
from tests import factories

pytestmark = pytest.mark.django_db

PAGES = ["dashboard", "control_plane_list", "control_plane_create", "member_list", "audit_log"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_requires_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_control_plane_detail_requires_login(client, control_plane):
    response = client.get(reverse("control_plane_detail", args=[control_plane.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_login_with_email_and_password(client, org):
    user = factories.make_user(org, email="ada@example.test")
    response = client.post(reverse("login"), {"username": "ada@example.test", "password": factories.PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).context["user"] == user


def test_login_with_a_wrong_password_shows_a_form_error(client, org):
    factories.make_user(org, email="ada@example.test")
    response = client.post(reverse("login"), {"username": "ada@example.test", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct email" in response.content


def test_viewer_cannot_create_control_planes(login, org, control_plane):
    viewer = factories.make_role_user(org, "cp_viewer")
    client = login(viewer)
    assert client.get(reverse("control_plane_create")).status_code == 403
    response = client.post(reverse("control_plane_create"), {"name": "x-new", "region": "us"})
    assert response.status_code == 403
    assert not ControlPlane.objects.filter(name="x-new").exists()
    # …but reads the list and the detail page.
    assert client.get(reverse("control_plane_list")).status_code == 200
    assert client.get(reverse("control_plane_detail", args=[control_plane.pk])).status_code == 200


def test_objects_of_another_org_are_404(login, org_admin, other_control_plane):
    client = login(org_admin)
    assert client.get(reverse("control_plane_detail", args=[other_control_plane.pk])).status_code == 404
    listing = client.get(reverse("control_plane_list"))
    assert other_control_plane.name not in listing.content.decode()


def test_role_assignment_of_another_org_cannot_be_revoked(login, org_admin, other_org, other_control_plane):
    victim = factories.make_role_user(other_org, "cp_viewer")
    assignment = RoleAssignment.objects.get(user=victim)
    response = login(org_admin).post(reverse("role_revoke", args=[assignment.pk]))
    assert response.status_code == 404
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_create_control_plane_full_page_redirects_and_audits(login, org, org_admin):
    response = login(org_admin).post(
        reverse("control_plane_create"),
        {"name": "orders", "region": "eu", "cluster_type": "CLUSTER_TYPE_CONTROL_PLANE", "labels": "env=prod, team=a"},
    )
    control_plane = ControlPlane.objects.get(name="orders")
    assert response.status_code == 302
    assert response["Location"] == reverse("control_plane_detail", args=[control_plane.pk])
    assert control_plane.labels == {"env": "prod", "team": "a"}
    event = AuditEvent.objects.get(action="control_plane.created")
    assert (event.actor, event.organization, event.target_id) == (org_admin, org, str(control_plane.pk))


def test_create_control_plane_htmx_validation_returns_only_the_form(login, org_admin):
    response = login(org_admin).post(
        reverse("control_plane_create"), {"name": "x", "region": "mars", "labels": "oops"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert body.lstrip().startswith("<form")
    assert "<html" not in body
    assert "Ensure this value has at least 2 characters" in body
    assert "Write labels as key=value" in body
    assert not ControlPlane.objects.exists()


def test_create_control_plane_htmx_success_redirects_client(login, org_admin):
    response = login(org_admin).post(
        reverse("control_plane_create"),
        {"name": "orders", "region": "us", "cluster_type": "CLUSTER_TYPE_CONTROL_PLANE"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("control_plane_detail", args=[ControlPlane.objects.get().pk])


def test_duplicate_control_plane_name_is_a_form_error(login, org_admin, control_plane):
    response = login(org_admin).post(reverse("control_plane_create"), {"name": control_plane.name, "region": "us",
                                                                         "cluster_type": "CLUSTER_TYPE_CONTROL_PLANE"})
    assert response.status_code == 400
    assert "already exists in that region" in response.content.decode()


def test_control_plane_list_full_page_and_htmx_fragment(login, org_admin, control_plane):
    client = login(org_admin)
    full = client.get(reverse("control_plane_list"))
    fragment = client.get(reverse("control_plane_list"), {"q": "pay"}, headers={"HX-Request": "true"})
    assert b"<html" in full.content and b'id="results"' in full.content
    assert b"<html" not in fragment.content
    assert fragment.content.decode().lstrip().startswith('<div id="results">')
    assert b"payments" in fragment.content
    empty = client.get(reverse("control_plane_list"), {"q": "zzz"}, headers={"HX-Request": "true"})
    assert b"No control plane matches" in empty.content


def test_control_plane_list_paginates(login, org, org_admin):
    for index in range(30):
        factories.make_control_plane(org, name=f"cp-{index:02d}")
    client = login(org_admin)
    first = client.get(reverse("control_plane_list"))
    second = client.get(reverse("control_plane_list"), {"page": 2})
    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5
    assert b"Page 1 of 2" in first.content


def test_org_admin_assigns_and_revokes_roles_with_audit(login, org, org_admin, control_plane):
    member = factories.make_role_user(org, "member")
    client = login(org_admin)
    response = client.post(
        reverse("role_assign"),
        {"user": member.pk, "role": "vault_admin", "control_plane": control_plane.pk},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section class="card" id="roles">')
    assignment = RoleAssignment.objects.get(user=member)
    assert (assignment.role, assignment.control_plane) == ("vault_admin", control_plane)
    assert AuditEvent.objects.filter(action="role.assigned", target_id=str(member.pk)).exists()
    client.post(reverse("role_revoke", args=[assignment.pk]))
    assert not RoleAssignment.objects.filter(user=member).exists()
    assert AuditEvent.objects.filter(action="role.revoked", target_id=str(member.pk)).exists()


def test_non_admin_cannot_assign_roles(login, org, control_plane):
    viewer = factories.make_role_user(org, "org_admin_read_only")
    response = login(viewer).post(reverse("role_assign"), {"user": viewer.pk, "role": "cp_admin"})
    assert response.status_code == 403
    assert not RoleAssignment.objects.filter(user=viewer).exists()


def test_member_without_role_cannot_read_members_or_audit(login, org):
    client = login(factories.make_role_user(org, "member"))
    assert client.get(reverse("member_list")).status_code == 403
    assert client.get(reverse("audit_log")).status_code == 403


def test_audit_log_filters_and_scopes_to_the_org(login, org, org_admin, other_org):
    factories.make_control_plane(other_org)
    from konnect_admin.services import audit_record

    audit_record(actor=None, organization=other_org, action="secret.leak_marker")
    audit_record(actor=org_admin, organization=org, action="control_plane.created")
    response = login(org_admin).get(reverse("audit_log"), {"action": "control_plane."}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "control_plane.created" in body
    assert "leak_marker" not in body
    assert body.lstrip().startswith('<div id="events">')


def test_organization_switcher(login, org, other_org):
    user = factories.make_user(org)
    from konnect_admin import services

    services.member_add(organization=other_org, user=user, actor=None)
    client = login(user)
    assert client.get(reverse("dashboard")).context["current_organization"] == org
    client.post(reverse("organization_switch"), {"organization": other_org.pk})
    assert client.get(reverse("dashboard")).context["current_organization"] == other_org


def test_switching_to_a_foreign_organization_is_refused(login, org, other_org):
    client = login(factories.make_user(org))
    client.post(reverse("organization_switch"), {"organization": other_org.pk})
    assert client.get(reverse("dashboard")).context["current_organization"] == org


def test_user_without_organization_sees_an_explanation(login):
    response = login(factories.make_user()).get(reverse("dashboard"))
    assert response.status_code == 403
    assert b"No organization yet" in response.content


def test_pages_carry_csp_without_unsafe_inline(login, org_admin):
    response = login(org_admin).get(reverse("dashboard"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
