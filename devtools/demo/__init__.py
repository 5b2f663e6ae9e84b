"""Demo data (`manage.py demo`, `make run`): two organizations, a user for every role, control planes in two
regions, then one step per app in `DEMO_STEPS` — callables `(demo: DemoData, log) -> None`, each in its module here.

Dev tooling: the product apps know nothing of the demo, and production settings do not install this app.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from devtools.demo.debugger import debugger_demo_step
from devtools.demo.encryption_keys import link_demo_key
from devtools.demo.vault import vault_demo_step
from konnect_admin import services
from konnect_admin.models import ControlPlane, Organization, Role, RoleAssignment, User

DEMO_PASSWORD = "konnect-demo"  # noqa: S105 - printed to the operator; demo databases only


@dataclass
class DemoData:
    organizations: dict[str, Organization] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    control_planes: dict[str, ControlPlane] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)


# (email, organization, team or None, [(role, control plane key or None for `*`)], what they can do)
DEMO_USERS = [
    ("admin@acme.test", "Acme", "Organization Admin", [], "Organization Admin (links keys, manages members)"),
    ("readonly@acme.test", "Acme", "Organization Admin (Read Only)", [], "Organization Admin (Read Only)"),
    ("cpadmin@acme.test", "Acme", "Control Plane Admin", [], "Control Plane Admin on every control plane"),
    ("creator@acme.test", "Acme", None, [(Role.CP_CREATOR, None)], "Control Plane Creator"),
    ("viewer@acme.test", "Acme", None, [(Role.CP_VIEWER, None)], "Control Plane Viewer on every control plane"),
    ("debugger@acme.test", "Acme", None, [(Role.DEBUG_SESSION_CREATOR, "payments")], "Debug Session Creator on payments"),
    ("vault@acme.test", "Acme", None, [(Role.VAULT_ADMIN, "payments")], "Vault Admin on payments"),
    ("member@acme.test", "Acme", None, [], "member without any role"),
    ("admin@globex.test", "Globex", "Organization Admin", [], "Organization Admin of Globex"),
    ("ops@globex.test", "Globex", "Control Plane Admin", [], "Control Plane Admin of Globex, viewer in Acme"),
]
DEMO_CONTROL_PLANES = [
    ("payments", "Acme", "us", "Payments gateway", {"team": "payments", "env": "prod"}),
    ("storefront", "Acme", "eu", "EU storefront", {"team": "web"}),
    ("internal-tools", "Globex", "us", "Internal APIs", {"env": "staging"}),
]

# Run in order after the base data: a linked CMEK first, so the Debugger's payloads and the vault are under it.
DEMO_STEPS = [link_demo_key, debugger_demo_step, vault_demo_step]


@transaction.atomic
def demo_build(*, log=lambda message: None) -> DemoData:
    demo = DemoData()
    User.objects.create_superuser(email="platform@konnect.test", password=DEMO_PASSWORD)
    demo.logins.append(("platform@konnect.test", "platform operator (Django admin site at /platform-admin/)"))
    for name in ("Acme", "Globex"):
        demo.organizations[name] = services.organization_create(name=name, actor=None)
    bootstrap_admin = None
    for email, org_name, team, _roles, _label in DEMO_USERS:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD)
        demo.users[email] = user
        services.member_add(organization=demo.organizations[org_name], user=user, actor=None, team=team)
        if team == "Organization Admin" and org_name == "Acme":
            bootstrap_admin = user
    for key, org_name, region, description, labels in DEMO_CONTROL_PLANES:
        organization = demo.organizations[org_name]
        creator = bootstrap_admin if org_name == "Acme" else demo.users["admin@globex.test"]
        demo.control_planes[key] = services.control_plane_create(
            organization=organization, actor=creator, name=key, region=region, description=description, labels=labels
        )
    for email, org_name, _team, roles, label in DEMO_USERS:
        for role, cp_key in roles:
            RoleAssignment.objects.create(
                organization=demo.organizations[org_name],
                user=demo.users[email],
                role=role,
                control_plane=demo.control_planes[cp_key] if cp_key else None,
            )
        demo.logins.append((email, label))
    # One user in two organizations, to show the organization switcher.
    services.member_add(organization=demo.organizations["Acme"], user=demo.users["ops@globex.test"], actor=None)
    RoleAssignment.objects.create(
        organization=demo.organizations["Acme"], user=demo.users["ops@globex.test"], role=Role.CP_VIEWER
    )
    log(f"Created {len(demo.organizations)} organizations, {len(demo.users)} users, {len(demo.control_planes)} control planes.")
    for step in DEMO_STEPS:
        step(demo, log)
    return demo
