"""Schemathesis against our published v1/v2 documents, with real ids so requests reach the vault code: no 500s,
every error a problem+json whose status matches, successes conform to the published schema."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings

from konnect_admin import tokens
from tests import factories
from vault import services

pytestmark = pytest.mark.django_db
MAX_EXAMPLES = 25


@pytest.fixture
def wsgi_app():
    """`wsgi_app()` → the WSGI app, without closing the test's database connection after each request, as
    Django's test Client does (call it after the last use of a Client: the Client reconnects those signals)."""

    def _app():
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        return get_wsgi_application()

    yield _app
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_vault_operations_survive_fuzzing(version, org, control_plane, wsgi_app):
    admin = factories.make_role_user(org, "org_admin")
    _pat, personal = tokens.personal_access_token_create(user=admin, organization=org, name="fuzz")
    _dpt, data_plane = tokens.data_plane_token_create(actor=admin, control_plane=control_plane, name="fuzz")
    store = services.config_store_create(actor=admin, control_plane=control_plane, name="store")
    services.secret_create(actor=admin, store=store, key="key", value="value")
    services.vault_create(actor=admin, control_plane=control_plane, prefix="pay", config_store=store)
    schema = schemathesis.openapi.from_dict(json.loads(Client().get(f"/api/us/{version}/openapi.json").content))
    app = wsgi_app()
    headers = {"Authorization": f"Bearer {personal if version == 'v2' else data_plane}"}
    failures, fuzzed = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if "/vault" not in operation.path and "config-stores" not in operation.path:
            continue  # other apps' operations are theirs to fuzz
        fuzzed += 1

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            parameters = case.path_parameters or {}
            parameters.update({k: str(v) for k, v in {"controlPlaneId": control_plane.pk,
                                                       "configStoreId": store.pk}.items() if k in parameters})
            response = case.call(headers=headers, app=app)
            where = f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:200]}"
            assert response.status_code < 500 or response.status_code == 503, where
            if response.status_code >= 400:
                assert response.json()["status"] == response.status_code, where
            elif response.status_code != 204:
                case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])

        try:
            run()
        except AssertionError as error:
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert fuzzed >= (1 if version == "v1" else 6)
    assert not failures, "\n\n".join(failures)
