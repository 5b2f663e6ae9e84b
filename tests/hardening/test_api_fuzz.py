"""Schemathesis against the project's own OpenAPI documents: every operation, authenticated, bounded.

No 500s, every error body is application/problem+json in Konnect's shape, and responses conform to the
schema the API publishes.
"""

import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, given, settings

from konnect_admin import tokens
from tests import factories
from tests.wsgi import connection_kept

pytestmark = pytest.mark.django_db(transaction=False)

MAX_EXAMPLES = 15
PROBLEM_KEYS = {"status", "title", "instance", "detail"}


def load_schema(version: str):
    document = json.loads(Client().get(f"/api/us/{version}/openapi.json").content)
    assert document["paths"], f"the {version} API publishes no operations"
    schema = schemathesis.openapi.from_dict(document)
    schema.app = get_wsgi_application()
    return schema


@pytest.fixture
def credentials(local_kms, org, control_plane):
    admin = factories.make_role_user(org, "org_admin")
    _pat, personal = tokens.personal_access_token_create(user=admin, organization=org, name="fuzz")
    _dpt, data_plane = tokens.data_plane_token_create(actor=admin, control_plane=control_plane, name="fuzz")
    return {"v0": personal, "v2": personal, "v1": data_plane}


def problem_json_on_errors(response, case):
    if response.status_code < 400:
        return
    headers = {name.lower(): value for name, value in response.headers.items()}
    content_type = headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{case.method} {case.formatted_path} → {response.status_code} with {content_type!r}"
    )
    body = response.json()
    assert PROBLEM_KEYS <= body.keys(), body
    assert body["status"] == response.status_code


def no_server_error(response, case):
    assert response.status_code < 500 or response.status_code == 503, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    )


@pytest.mark.parametrize("version", ["v0", "v1", "v2"])
def test_every_operation_survives_fuzzing(version, credentials):
    schema = load_schema(version)
    headers = {"Authorization": f"Bearer {credentials[version]}"}
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(headers=headers, app=schema.app)
            no_server_error(response, case)
            problem_json_on_errors(response, case)
            if response.status_code < 400:
                case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])

        try:
            with connection_kept():
                run()
        except AssertionError as error:
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
        except schemathesis.errors.SchemathesisError as error:  # the check's own failure report
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert operations, "no operations were fuzzed"
    assert not failures, "\n\n".join(failures)
