"""The committed OpenAPI document is the generated one and covers every route of template.yaml."""

from __future__ import annotations

import json

from infra.template import FUNCTIONS_DIR, load_template
from msp.openapi import OPERATIONS, build_document, render

COMMITTED = FUNCTIONS_DIR / "openapi.json"


def test_committed_document_equals_the_generated_one():
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "functions/openapi.json is stale: run 'make openapi' and commit the result (review the API change)"
    )


def test_every_template_route_is_documented_and_nothing_else():
    routes = {(r.method, r.path): r for r in load_template().routes}
    documented = {(op.method, op.path): op for op in OPERATIONS}
    assert set(routes) == set(documented)
    for key, route in routes.items():
        assert documented[key].public == route.public, f"{key}: security differs from the template"


def test_document_is_openapi_3_1_with_security_and_errors():
    document = build_document()
    assert document["openapi"] == "3.1.0"
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert operation["responses"], (method, path)
            if operation["security"]:
                assert "401" in operation["responses"], (method, path)
    json.dumps(document)  # serialisable as is


def test_request_models_forbid_unknown_fields_and_responses_allow_them():
    schemas = build_document()["components"]["schemas"]
    assert schemas["CandidatureFields"]["additionalProperties"] is False
    assert "additionalProperties" not in schemas["Candidature"]
