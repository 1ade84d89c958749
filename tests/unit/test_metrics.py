"""The business metrics' lines (msp.metrics): one EMF document per event, in the template's namespace, under the
emitting function's service; what each event counts is tested where it is decided (use cases, handlers, the local
scenario in tests/integration/test_observability.py)."""

from __future__ import annotations

import importlib
import json

import pytest

from infra.gateway import build_event
from infra.lambda_runtime import LambdaContext
from infra.template import load_template
from msp.metrics import BusinessMetrics

TEMPLATE = load_template()
EMITTING = {
    "handlers.create_candidature",
    "handlers.submit_candidature",
    "handlers.transition_candidature",
    "handlers.verify_document_upload",
    "handlers.declare_session",
    "handlers.search_psychologists",
    "handlers.tally_sessions",
}


@pytest.mark.parametrize("module", sorted({function.module for function in TEMPLATE.functions.values()}))
def test_a_function_emitting_metrics_names_its_service_after_its_handler(module):
    emitter = getattr(importlib.import_module(module), "metrics", None)
    if module not in EMITTING:
        assert emitter is None
        return
    assert isinstance(emitter, BusinessMetrics)
    assert emitter.service == module.removeprefix("handlers.").replace("_", "-")


def test_each_event_is_one_line_in_the_namespace_with_the_service_and_nothing_else(capsys):
    events = BusinessMetrics(service="search-psychologists")
    events.search_answered(7)
    events.quota_refused()
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == TEMPLATE.parameters["MetricsNamespace"]["Default"]
    assert directive["Dimensions"] == [["service"]]
    assert set(first) == {"_aws", "service", "Searches", "SearchResults"}
    assert (first["Searches"], first["SearchResults"]) == ([1.0], [7.0])
    assert set(second) == {"_aws", "service", "QuotaRefusals"}


def test_an_invocation_without_an_event_writes_no_line_and_no_warning(capsys, recwarn):
    from handlers import search_psychologists

    route = next(route for route in TEMPLATE.routes if route.function == "SearchPsychologistsFunction")
    event = build_event(route, "GET", route.path, "lat=north", [], b"", {}, None, "127.0.0.1")
    answer = search_psychologists.handler(event, LambdaContext("SearchPsychologistsFunction", 512, 10))
    assert answer["statusCode"] == 422  # refused before any search: no event
    assert '"_aws"' not in capsys.readouterr().out
    assert not recwarn.list  # no "No application metrics to publish": nothing waits for a flush
