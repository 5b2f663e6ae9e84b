"""The audit log as people read it: filters (each, combined, scoped to the caller's organization) and every action
the code can write rendered as words: no Python dict text, no raw ids in the text (ids only on hover and in links)."""

import ast
import pathlib
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from konnect_admin.audit_display import ACTIONS, REFERENCES, action_phrase
from konnect_admin.models import ControlPlane
from konnect_admin.services import audit_record
from konnect_admin.templatetags.moments import ago
from tests import factories

pytestmark = pytest.mark.django_db
ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCT_PACKAGES = ("konnect_admin", "encryption_keys", "vault", "debugger")
AUDIT_CALLS = {"audit_record", "audit_user_event", "_audit"}
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
HTMX = {"HX-Request": "true"}


# --- every action the code can write -----------------------------------------------------------------------


def _strings(node) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _dict_keys(node) -> set[str]:
    return {key.value for n in ast.walk(node) if isinstance(n, ast.Dict)
            for key in n.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)}


def written_actions() -> dict[str, set[str]]:
    """Action → detail keys, for every audit write in the product packages, read from the source: the `action`
    argument's strings, resolved through module constants, tuple assignments, the callers of a function taking
    `action`, and dataclass fields (LogRetention's `audit_action`)."""
    found: dict[str, set[str]] = {}
    for package in PRODUCT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            assigned: dict[str, set[str]] = {}
            dicts: dict[str, set[str]] = {}
            calls: dict[str, list[ast.Call]] = {}
            fields: dict[str, int] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        pairs = [(target, node.value)]
                        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                            pairs = list(zip(target.elts, node.value.elts, strict=False))
                        for name, value in pairs:
                            if isinstance(name, ast.Name):
                                assigned.setdefault(name.id, set()).update(_strings(value))
                                dicts.setdefault(name.id, set()).update(_dict_keys(value))
                elif isinstance(node, ast.Call):
                    name = getattr(node.func, "id", getattr(node.func, "attr", None))
                    calls.setdefault(name, []).append(node)
                elif isinstance(node, ast.ClassDef):
                    annotated = [s.target.id for s in node.body if isinstance(s, ast.AnnAssign)]
                    fields |= {field: (node.name, index) for index, field in enumerate(annotated)}
            every_call = [call for group in calls.values() for call in group]
            for function in AUDIT_CALLS:
                for call in calls.get(function, []):
                    action = next((k.value for k in call.keywords if k.arg == "action"), None)
                    if action is None and function == "_audit" and len(call.args) > 2:
                        action = call.args[2]
                    if action is None:
                        continue
                    values = _strings(action)
                    if isinstance(action, ast.Name):
                        values |= assigned.get(action.id, set())
                        values |= {s for other in every_call for k in other.keywords if k.arg == action.id
                                   for s in _strings(k.value)}
                    if isinstance(action, ast.Attribute) and action.attr in fields:
                        owner, index = fields[action.attr]
                        values |= {s for c in calls.get(owner, []) if len(c.args) > index for s in _strings(c.args[index])}
                    details = next((k.value for k in call.keywords if k.arg == "details"), None)
                    keys = _dict_keys(details) if details is not None else set()
                    if isinstance(details, ast.Name):
                        keys |= dicts.get(details.id, set())
                    if function == "_audit":
                        keys |= {k.arg for k in call.keywords if k.arg} | {"control_plane"}
                    for value in values:
                        found.setdefault(value, set()).update(keys)
    return found


def test_the_source_walk_finds_the_audit_writes():
    actions = written_actions()
    assert len(actions) >= 60  # a walk that finds little is broken, not proof
    assert {"login.locked_out", "encryption.scope_mismatch", "vault.resolution_log_purged",
            "system_account.token_revoked", "organization.suspended", "vault.secret.created"} <= set(actions)
    assert {"checks", "key_ref"} <= actions["encryption_key.linked"]


def test_every_written_action_has_words():
    missing = sorted(set(written_actions()) - set(ACTIONS))
    assert not missing, f"add these to konnect_admin.audit_display.ACTIONS: {missing}"


class _Text(HTMLParser):
    """The text a reader sees (attribute values, such as title="…id…" and href, are not text)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data):
        self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def sample(key: str, index: int, objects: dict):
    if key in REFERENCES:
        return objects.get(key, str(uuid.uuid4()))
    if key.endswith("_arn"):
        return "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    if key in ("at", "expires_at"):
        return timezone.now().isoformat()
    if key == "checks":
        return {"arn_syntax": "pass", "rotation": "warn"}
    choices = [3, "words", ["first", "second"], {"nested_key": "v", "count": 2, "scope": str(uuid.uuid4())},
               True, None, str(uuid.uuid4())]
    return choices[index % len(choices)]


def test_every_written_action_renders_without_dict_text_or_raw_ids(login, org, org_admin, control_plane):
    from vault.models import ConfigStore

    store = ConfigStore.objects.create(control_plane=control_plane, name="payments-secrets")
    objects = {"control_plane": str(control_plane.pk), "config_store": str(store.pk)}
    actions = written_actions()
    for action, keys in sorted(actions.items()):
        details = {key: sample(key, index, objects) for index, key in enumerate(sorted(keys))}
        audit_record(actor=org_admin, organization=org, action=action, target=control_plane, details=details)
    client = login(org_admin)
    seen = 0
    for page in range(1, 4):
        html = client.get(reverse("audit_log"), {"page": page}, headers=HTMX).content.decode()
        text = re.sub(r"arn:aws:kms:\S+", "ARN", visible_text(html))  # a KMS key's name is its ARN (id included)
        for bad in ("{'", "'}", "['", "']", "{\"", "UUID(", "None", "True", "False"):
            assert bad not in text, f"{bad!r} in the audit log's text"
        assert not UUID_TEXT.search(text), UUID_TEXT.search(text)
        seen += text.count(org_admin.email)
        for action in actions:
            if f">{action}<" in html:
                assert action_phrase(action) in text
    assert seen >= len(actions)
    html = client.get(reverse("audit_log"), {"action": "encryption_key.linked"}).content.decode()
    assert "Linked an encryption key" in html and "1 pass, 1 warn" in html
    assert f'href="{reverse("control_plane_detail", args=[control_plane.pk])}"' in html
    assert f'title="control plane id {control_plane.pk}"' in html


def test_a_deleted_object_keeps_its_name_and_its_id_on_hover(login, org, org_admin):
    control_plane = factories.make_control_plane(org, name="gone-plane")
    audit_record(actor=org_admin, organization=org, action="control_plane.created", target=control_plane)
    pk = control_plane.pk
    ControlPlane.objects.filter(pk=pk).delete()
    html = login(org_admin).get(reverse("audit_log")).content.decode()
    assert "gone-plane (no longer exists)" in html and f'title="control plane id {pk}"' in html
    assert f'href="{reverse("control_plane_detail", args=[pk])}"' not in html


def test_another_orgs_object_named_in_details_is_not_resolved(login, org, org_admin, other_control_plane):
    audit_record(actor=org_admin, organization=org, action="role.assigned", target=org_admin,
                 details={"role": "cp_viewer", "control_plane": str(other_control_plane.pk)})
    html = login(org_admin).get(reverse("audit_log")).content.decode()
    assert other_control_plane.name not in html
    assert reverse("control_plane_detail", args=[other_control_plane.pk]) not in html
    assert "Control Plane Viewer" in html


# --- filters ---------------------------------------------------------------------------------------------------


@pytest.fixture
def history(org, org_admin, other_org, control_plane):
    """Events of `org` by two people and the system at known times, and one of another organization."""
    ada = factories.make_user(org, email="ada@example.test")
    other_person = factories.make_user(other_org, email="mallory@example.test")
    other_plane = factories.make_control_plane(other_org, name="their-plane")
    now = timezone.now()

    def event(actor, action, target=None, days_ago=0, organization=org):
        return audit_record(actor=actor, organization=organization, action=action, target=target), \
            now - timedelta(days=days_ago)

    made = [
        event(ada, "control_plane.created", control_plane, days_ago=10),
        event(org_admin, "role.assigned", ada, days_ago=5),
        event(None, "encryption_key.checked", days_ago=1),
        event(ada, "vault.secret.created", control_plane, days_ago=0),
        event(other_person, "control_plane.created", other_plane, organization=other_org),
    ]
    _backdate({record.pk: moment for record, moment in made})
    return {"ada": ada, "other_person": other_person, "other_plane": other_plane}


def _backdate(moments):
    """Audit rows are append-only through the ORM; the test's clock is set with raw SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        for pk, moment in moments.items():
            cursor.execute("UPDATE konnect_admin_auditevent SET created_at = %s WHERE id = %s", [moment, pk])


def listed(client, **params) -> list[str]:
    response = client.get(reverse("audit_log"), params)
    assert response.status_code == 200
    return [view.event.action for view in response.context["events"]]


def test_each_filter(login, org_admin, history):
    client = login(org_admin)
    assert listed(client, actor="ada@example.test") == ["vault.secret.created", "control_plane.created"]
    by_system = listed(client, actor="system")
    assert "encryption_key.checked" in by_system and not {"role.assigned", "vault.secret.created"} & set(by_system)
    assert listed(client, action="role.assigned") == ["role.assigned"]
    assert set(listed(client, action="control_plane.")) == {"control_plane.created"}
    assert listed(client, target="payme") == ["vault.secret.created", "control_plane.created"]  # "payments"
    assert set(listed(client, target=str(history["ada"].pk))) == {"member.added", "role.assigned"}
    day = timezone.localdate()
    assert "control_plane.created" not in listed(client, since=(day - timedelta(days=6)).isoformat())
    assert listed(client, until=(day - timedelta(days=9)).isoformat())[0] == "control_plane.created"
    assert listed(client, since=(day - timedelta(days=5)).isoformat(),
                  until=(day - timedelta(days=5)).isoformat()) == ["role.assigned"]


def test_filters_combine(login, org_admin, history):
    client = login(org_admin)
    assert listed(client, actor="ada@example.test", action="control_plane.") == ["control_plane.created"]
    assert listed(client, actor="ada@example.test", target="payments",
                  since=timezone.localdate().isoformat()) == ["vault.secret.created"]
    assert listed(client, actor="ada@example.test", action="role.assigned") == []


def test_filters_never_reach_another_organization(login, org_admin, history):
    client = login(org_admin)
    response = client.get(reverse("audit_log"), {"actor": "mallory@example.test"})
    assert response.status_code == 200 and list(response.context["events"]) == []
    assert "mallory@example.test" not in visible_text(response.content.decode()).replace(
        "Select a valid choice. mallory@example.test", "")
    assert listed(client, target="their-plane") == []
    assert listed(client, target=str(history["other_plane"].pk)) == []
    assert "mallory@example.test" not in client.get(reverse("audit_log")).content.decode()  # not even a choice


def test_bad_filters_are_form_errors_not_500s(login, org_admin, history):
    client = login(org_admin)
    for params in ({"since": "yesterday"}, {"action": "nonsense"},
                   {"since": "2026-02-02", "until": "2026-01-01"}, {"target": "x" * 301}):
        response = client.get(reverse("audit_log"), params)
        assert response.status_code == 200 and list(response.context["events"]) == []
        assert 'role="alert"' in response.content.decode()
        fragment = client.get(reverse("audit_log"), params, headers=HTMX).content.decode()
        assert "Fix the filters" in fragment and "<html" not in fragment


def test_pagination_keeps_the_filters(login, org, org_admin):
    for _ in range(55):
        audit_record(actor=org_admin, organization=org, action="role.assigned", target=org_admin)
    response = login(org_admin).get(reverse("audit_log"), {"action": "role.", "actor": org_admin.email})
    html = response.content.decode()
    assert "Page 1 of 2" in html
    next_link = re.search(r'href="([^"]*)" rel="next"', html)[1].replace("&amp;", "&")
    assert "action=role." in next_link and f"actor={org_admin.email.replace('@', '%40')}" in next_link
    assert "page=2" in next_link


def test_the_filter_form_works_without_javascript(login, org_admin):
    html = login(org_admin).get(reverse("audit_log")).content.decode()
    form = re.search(r"<form class=\"filters\"[^>]*>", html)[0]
    assert 'method="get"' in form and f'action="{reverse("audit_log")}"' in form
    for name in ("actor", "action", "target", "since", "until"):
        assert f'<label for="id_{name}">' in html
    assert '<button type="submit">Filter</button>' in html


# --- times and the Overview ---------------------------------------------------------------------------------


def test_relative_times_say_just_now_under_a_minute():
    now = timezone.now()
    assert ago(now - timedelta(seconds=59), now) == "just now"
    assert ago(now, now) == "just now"
    assert ago(now - timedelta(minutes=5, seconds=3), now).replace("\xa0", " ") == "5 minutes ago"
    assert ago(now - timedelta(days=3, hours=4), now).replace("\xa0", " ") == "3 days ago"


def test_the_overview_shows_peoples_actions_not_routine_checks(login, org, org_admin, control_plane):
    for _ in range(12):
        audit_record(actor=None, organization=org, action="encryption_key.checked")
    audit_record(actor=org_admin, organization=org, action="control_plane.created", target=control_plane)
    audit_record(actor=None, organization=org, action="encryption_key.status_changed")  # not routine: listed
    html = login(org_admin).get(reverse("dashboard")).content.decode()
    activity = html[html.index("Recent activity"):]
    assert "Checked an encryption key" not in activity and "encryption_key.checked" not in activity
    assert "Created a control plane" in activity and "Encryption key status changed" in activity
    assert "12 routine system events" in activity and "0 minutes" not in activity and "just now" in activity


def test_a_removed_member_is_named_as_no_longer_a_member(login, org, org_admin):
    from konnect_admin import services

    person = factories.make_user(org, email="leaver@example.test")
    services.member_remove(organization=org, actor=org_admin, user=person)
    html = login(org_admin).get(reverse("audit_log"), {"action": "member.removed"}).content.decode()
    assert "leaver@example.test (no longer a member)" in html and f'title="user id {person.pk}"' in html
    assert "Removed a member" in html
