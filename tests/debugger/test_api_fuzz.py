"""Schemathesis against the Debugger's own operations (ingest and blobs): no 500, problem+json on errors."""

import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, given, settings

from konnect_admin import tokens
from tests.wsgi import connection_kept

pytestmark = pytest.mark.django_db
MAX_EXAMPLES = 25


def operations(version: str, prefix: str):
    document = json.loads(Client().get(f"/api/us/{version}/openapi.json").content)
    schema = schemathesis.openapi.from_dict(document)
    found = [result.ok() for result in schema.get_all_operations()]
    return [operation for operation in found if operation.path.startswith(prefix)]


@pytest.mark.parametrize(("version", "prefix"), [("v1", "/debugger"), ("v0", "/blobs")])
def test_debugger_operations_survive_fuzzing(version, prefix, org_admin, control_plane, debug_session):
    _token, text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="fuzz")
    app = get_wsgi_application()
    found = operations(version, prefix)
    assert len(found) >= (5 if version == "v1" else 2)
    statuses = set()
    for operation in found:

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            if "session_id" in (case.path_parameters or {}):  # the real session: exercise the deep paths
                case.path_parameters["session_id"] = str(debug_session.pk)
            response = case.call(app=app, headers={"Authorization": f"Bearer {text}"})
            statuses.add(response.status_code)
            assert response.status_code < 500 or response.status_code == 503, response.text[:300]
            if response.status_code >= 400:
                headers = {name.lower(): value for name, value in response.headers.items()}
                content_type = headers["content-type"]
                content_type = content_type[0] if isinstance(content_type, list) else content_type
                assert content_type.startswith("application/problem+json"), response.status_code
                assert json.loads(response.content)["status"] == response.status_code

        with connection_kept():
            run()
    assert any(status < 400 for status in statuses)


def test_a_malformed_session_id_is_a_problem_not_an_html_page(dp_client):
    response = dp_client.post("/api/us/v1/debugger/sessions/not-a-uuid/traces", {}, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
