"""The HTTP edge turns hostile headers and bodies into 4xx answers with the usual error body, never a 500."""

from __future__ import annotations

import json

import pytest

from infra.gateway import build_event
from infra.template import Route
from msp.candidatures.models import CandidatureFields
from msp.http import create_app, if_match_version, json_response, parse_body

ROUTE = Route("PATCH", "/v1/things/{thing_id}", "ThingFunction", False)
app = create_app()


@app.patch("/v1/things/<thing_id>")
def _edit(thing_id: str):
    version = if_match_version(app)
    parse_body(app, CandidatureFields)
    return json_response(200, {"version": version})


def _call(if_match: str = "1", body: str = "{}") -> tuple[int, dict]:
    event = build_event(
        ROUTE,
        "PATCH",
        "/v1/things/t1",
        "",
        [("Content-Type", "application/json"), ("If-Match", if_match)],
        body.encode(),
        {"thing_id": "t1"},
        {"sub": "u1", "cognito:groups": ["psychologists"]},
        "127.0.0.1",
    )
    answer = app.resolve(event, None)
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("value", ["²", "1²", "³", '"¹"', "٣", "१२", "9" * 10, "9" * 5000, "-1", "1.0", "0x1"])
def test_an_if_match_that_is_not_a_short_ascii_number_is_a_400(value):
    status, body = _call(if_match=value)
    assert status == 400, body
    assert body["error"]["code"] == "bad_request" and "If-Match" in body["error"]["message"]


@pytest.mark.parametrize("value", ["7", '"7"', 'W/"7"', " 7 "])
def test_an_if_match_version_is_read_with_or_without_quotes(value):
    assert _call(if_match=value) == (200, {"version": 7})


@pytest.mark.parametrize("depth", [33, 1_000, 5_000, 10_000])
@pytest.mark.parametrize("shape", ["[{}]", '{"a":{}}'])
def test_a_body_nested_too_deep_is_a_400_naming_the_limit(depth, shape):
    opening, closing = ("[" * depth, "]" * depth) if shape == "[{}]" else ('{"a":' * depth, "}" * depth)
    status, body = _call(body=opening + "1" + closing)
    assert status == 400, body
    assert body["error"]["code"] == "malformed_json" and "32" in body["error"]["message"]


def test_a_body_nested_within_the_limit_is_validated_as_usual():
    nested = '{"a":' * 31 + "1" + "}" * 31
    status, body = _call(body=f'{{"first_name": {nested}}}')
    assert status == 422 and body["error"]["details"][0]["field"] == "first_name"
