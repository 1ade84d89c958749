"""The committed OpenAPI document is the generated one, covers every route of template.yaml, types every schema,
and states the rules the API enforces: each documented pattern allows what the API's own check accepts."""

from __future__ import annotations

import contextlib
import json
import re
import uuid

import jsonschema_rs
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infra.template import FUNCTIONS_DIR, load_template
from msp.candidatures.models import CandidatureFields
from msp.errors import IdentityLocked
from msp.geography import PHONE_PATTERN, normalise_phone
from msp.http_errors import ERROR_ANSWERS, ErrorAnswer
from msp.identifiers import VALUE_PATTERN, adeli_problem, rpps_problem
from msp.openapi import OPERATIONS, build_document, render
from msp.openapi.error_responses import ERROR_DESCRIPTIONS, RETRY_AFTER, error_response
from msp.sessions import nir

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


def _schemas_in(node, where="#"):
    """Every schema object of the document, with where it is."""
    if isinstance(node, dict):
        if "type" in node or "$ref" in node or "anyOf" in node:
            yield where, node
        for key, value in node.items():
            yield from _schemas_in(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas_in(value, f"{where}/{index}")


def test_every_schema_is_fully_typed():
    document = build_document()
    names = set(document["components"]["schemas"])
    for where, schema in _schemas_in(document):
        if schema.get("type") == "array":
            assert "items" in schema or "prefixItems" in schema, f"{where}: an array without items"
        if schema.get("type") == "object":
            assert "properties" in schema or "additionalProperties" in schema, f"{where}: an object without fields"
        if "$ref" in schema and isinstance(schema["$ref"], str):
            assert schema["$ref"].removeprefix("#/components/schemas/") in names, f"{where}: {schema['$ref']}"


def test_every_operation_documents_throttling_its_token_and_its_errors_body():
    for path, methods in build_document()["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            assert "429" in responses, (method, path)
            assert ("401" in responses) == bool(operation["security"]), (method, path)
            for status, response in responses.items():
                if status >= "400":
                    assert response["content"]["application/json"]["schema"], (method, path, status)
            if "503" in responses:
                assert responses["503"]["headers"]["Retry-After"]["required"], (method, path)


def test_every_status_a_refusal_answers_is_described():
    for kind, answer in ERROR_ANSWERS.items():
        assert answer.status in ERROR_DESCRIPTIONS, f"{kind.__name__}: describe {answer.status} in ERROR_DESCRIPTIONS"


def test_retry_after_is_documented_where_a_refusal_sends_it():
    """409: a request still in progress (ERROR_ANSWERS) sends it, other conflicts do not; the quota look-up's 429:
    the daily limit sends it, API Gateway's throttling does not; a 429 API Gateway's alone: never."""
    paths = build_document()["paths"]
    for methods in paths.values():
        for operation in methods.values():
            responses = operation["responses"]
            if "409" in responses:
                assert responses["409"]["headers"] == {"Retry-After": RETRY_AFTER}
    assert paths["/v1/sessions/quota"]["post"]["responses"]["429"]["headers"] == {"Retry-After": RETRY_AFTER}
    assert "headers" not in paths["/v1/sessions"]["post"]["responses"]["429"]
    assert "headers" not in paths["/v1/sessions"]["post"]["responses"]["422"]


def test_a_refusal_given_a_retry_after_has_it_documented(monkeypatch):
    monkeypatch.setitem(ERROR_ANSWERS, IdentityLocked, ErrorAnswer(422, "identity_locked", {"Retry-After": "5"}))
    assert error_response(422, by_the_route=True)["headers"] == {"Retry-After": RETRY_AFTER}
    assert "headers" not in error_response(412, by_the_route=True)


def test_links_name_an_operation_and_its_parameters():
    document = build_document()
    operations = {op["operationId"]: op for methods in document["paths"].values() for op in methods.values()}
    for methods in document["paths"].values():
        for operation in methods.values():
            for response in operation["responses"].values():
                for link in response.get("links", {}).values():
                    target = operations[link["operationId"]]
                    names = {
                        f"{p['in']}.{p['name']}" if p["in"] == "header" else p["name"] for p in target["parameters"]
                    }
                    assert set(link["parameters"]) <= names, link


def test_a_candidature_answer_documents_every_field_it_sends():
    """Candidature.public() and a reviewer's allowed_actions against the document, with every object closed:
    a field the API sends and the document does not name fails here."""
    from infra.seed import demo_fields
    from msp.candidatures.models import Candidature, Document, DocumentKind
    from msp.clock import now_iso

    now = now_iso()
    given = {"website": "https://cabinet.example.fr", "accepting_new_patients": False, "full_until": "2031-01-31"}
    fields = CandidatureFields.model_validate(demo_fields(0) | given)
    candidature = Candidature(
        id=str(uuid.uuid4()),
        owner_sub="psy-1",
        created_at=now,
        updated_at=now,
        fields=fields,
        documents=[
            Document(
                document_id=str(uuid.uuid4()),
                kind=DocumentKind.DIPLOMA,
                content_type="application/pdf",
                declared_size=100,
                requested_at=now,
            )
        ],
    )
    answer = candidature.public() | {"allowed_actions": ["start_review"]}
    assert set(answer) >= set(CandidatureFields.model_fields) - {"public_phone"} | {"allowed_actions"}
    # jsonschema_rs (schemathesis' validator) reads patterns as ECMA-262 regular expressions, as the document means.
    closed = _closed(build_document())
    validator = jsonschema_rs.validator_for({"$ref": "#/components/schemas/Candidature"} | closed)
    assert not [error.message for error in validator.iter_errors(answer)]


def _closed(node):
    """The document with every object schema closed to properties it does not name."""
    if isinstance(node, dict):
        closed = {key: _closed(value) for key, value in node.items()}
        if closed.get("type") == "object" and "properties" in closed:
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(node, list):
        return [_closed(value) for value in node]
    return node


# Python's \s also takes U+001C-U+001F and U+0085 for spaces, ECMA-262's and Rust's do not: examples leave them out.
DOCUMENTED_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x1c\x1d\x1e\x1f\x85\ufeff")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(PHONE_PATTERN, fullmatch=True, alphabet=DOCUMENTED_CHARACTERS).filter(lambda raw: len(raw) <= 30))
def test_a_number_the_phone_pattern_allows_is_one_the_api_accepts(raw):
    """Within the documented maxLength (30)."""
    assert CandidatureFields.model_validate({"phone": raw}).phone == normalise_phone(raw)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789+ .-()\t", min_size=9, max_size=20))
def test_the_phone_pattern_allows_exactly_what_the_api_normalises(raw):
    assert (re.fullmatch(PHONE_PATTERN, raw) is not None) == (normalise_phone(raw) is not None)


def _key_aside(raw: str) -> str | None:
    """What nir_problem finds in the NIR once a two-digit key is made right: the format rules only."""
    normalised = nir.normalise(raw)
    body, key = normalised[:13], normalised[13:]
    if len(normalised) == nir.LENGTH and body.isascii() and body.isalnum() and key.isascii() and key.isdigit():
        with contextlib.suppress(ValueError):
            normalised = f"{body}{nir.control_key(body):02d}"
    return nir.nir_problem(normalised)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(nir.INPUT_PATTERN, fullmatch=True, alphabet=DOCUMENTED_CHARACTERS))
def test_a_nir_the_pattern_allows_has_the_format_the_api_checks(raw):
    assert _key_aside(raw) is None


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789 AaBbC", min_size=13, max_size=19))
@example("10001000000000A")  # a letter in the key: refused by both, not made right
def test_the_nir_pattern_allows_exactly_the_nir_formats_the_api_accepts(raw):
    assert (re.fullmatch(nir.INPUT_PATTERN, raw) is not None) == (_key_aside(raw) is None)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789 AaBbC39", min_size=7, max_size=13))
def test_the_identifier_pattern_allows_the_rpps_and_adeli_shapes(raw):
    value = raw.strip().upper()
    rpps = rpps_problem(value)
    shapes = rpps is None or "Luhn" in rpps or adeli_problem(value) is None
    assert (re.fullmatch(VALUE_PATTERN, raw.strip()) is not None) == shapes
