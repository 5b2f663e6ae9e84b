"""Upgrading a database whose traces did not keep their names: 0008 fills them from the stored span attributes,
as the traces table read them before (debugger/attributes.py, `entity_names`)."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from debugger.models import Trace
from tests.migrations import schema_at

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("debugger", "0007_remove_default_partitions")]
AFTER = [("debugger", "0008_trace_entity_names")]
BATCH = importlib.import_module("debugger.migrations.0008_trace_entity_names").BATCH


@pytest.fixture
def old_schema():
    """The database before traces kept their names; yields the historical Trace and Span models."""
    with schema_at(BEFORE) as apps:
        yield apps.get_model("debugger", "Trace"), apps.get_model("debugger", "Span")


def test_stored_traces_get_the_names_their_spans_carry(old_schema, debug_session):
    OldTrace, OldSpan = old_schema
    now = timezone.now()
    traces = OldTrace.objects.bulk_create(
        OldTrace(session_id=debug_session.pk, trace_id=f"{n:032x}", start_time=now, method="GET", created_at=now)
        for n in range(BATCH + 3))  # past one batch
    first, second, bare, *rest = traces

    def span(trace, span_id, start_ns, attributes):
        return OldSpan(trace=trace, span_id=f"{span_id:016x}", name="kong", start_ns=start_ns, end_ns=start_ns + 1,
                       attributes=attributes)

    OldSpan.objects.bulk_create([
        span(first, 1, 20, {"kong.route.name": "later-span", "kong.service.name": "svc"}),  # inserted first
        span(first, 2, 10, {"route.name": "earliest-span", "service.name": ""}),
        span(second, 1, 10, {"route.name": "second-key", "kong.route.name": "first-key", "service.name": 42}),
        span(bare, 1, 10, {"http.method": "GET"}),
        *(span(trace, 1, 10, {"route.name": f"route-{trace.pk}"}) for trace in rest),
    ])

    MigrationExecutor(connection).migrate(AFTER)

    names = {pk: (route, service) for pk, route, service in Trace.objects.values_list("pk", "route_name", "service_name")}
    assert names.pop(first.pk) == ("earliest-span", "svc")
    assert names.pop(second.pk) == ("first-key", "")
    assert names.pop(bare.pk) == ("", "")
    assert names == {trace.pk: (f"route-{trace.pk}", "") for trace in rest}
