"""The local gateway builds the same event and applies the same checks as API Gateway."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from infra.dev_issuer import DevIssuer
from infra.gateway import Gateway, build_event, flatten_claims
from infra.template import Route, load_template

SAMPLE = json.loads((Path(__file__).parent.parent / "fixtures" / "http_api_v2_event.json").read_text())
ROUTE = Route("POST", "/v1/candidatures/{candidature_id}/documents", "RequestDocumentUploadFunction", False)


def _keys(value, prefix=""):
    if not isinstance(value, dict):
        return set()
    keys = set()
    for key, child in value.items():
        path = f"{prefix}.{key}" if prefix else key
        keys.add(path)
        if key not in {"headers", "claims", "queryStringParameters", "pathParameters", "stageVariables"}:
            keys |= _keys(child, path)
    return keys


def _event(**overrides):
    arguments = {
        "route": ROUTE,
        "method": "POST",
        "raw_path": "/v1/candidatures/c1/documents",
        "raw_query": "a=1&a=2&b=",
        "headers": [
            ("Content-Type", "application/json"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "c1=v1; c2=v2"),
        ],
        "body": b'{"kind": "diploma"}',
        "path_parameters": {"candidature_id": "c1"},
        "claims": {"sub": "u1", "cognito:groups": ["psychologists"], "exp": 1},
        "source_ip": "127.0.0.1",
    }
    return build_event(**(arguments | overrides))


def test_event_has_every_field_of_a_real_http_api_v2_event():
    missing = _keys(SAMPLE) - _keys(_event()) - {"stageVariables"}
    assert not missing, f"missing from the local event: {sorted(missing)}"


def test_event_values_follow_api_gateway_conventions():
    event = _event()
    assert event["routeKey"] == "POST /v1/candidatures/{candidature_id}/documents"
    assert event["headers"]["x-multi"] == "1,2"
    assert "cookie" not in event["headers"] and event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["requestContext"]["authorizer"]["jwt"]["claims"] == {
        "sub": "u1",
        "cognito:groups": "[psychologists]",
        "exp": "1",
    }
    assert event["isBase64Encoded"] is False and event["body"] == '{"kind": "diploma"}'


def test_binary_bodies_are_base64_encoded():
    event = _event(headers=[("content-type", "application/pdf")], body=b"%PDF\x00\xff")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"%PDF\x00\xff"


def test_claims_are_flattened_like_api_gateway():
    assert flatten_claims({"a": ["x", "y"], "b": True, "c": 3}) == {"a": "[x y]", "b": "true", "c": "3"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    class NeverCalled:
        def invoke(self, *_):
            raise AssertionError("the handler must not run")

    issuer = DevIssuer(tmp_path_factory.mktemp("issuer"))
    return Gateway(load_template(), NeverCalled(), issuer), issuer


def _call(gateway, token):
    headers = [("authorization", f"Bearer {token}")] if token else []
    status, _, body = gateway.handle("GET", "/v1/candidatures/c1", headers, b"")
    return status, json.loads(body)


def test_tokens_are_checked_before_the_handler_runs(gateway, tmp_path):
    gw, issuer = gateway
    stranger = DevIssuer(tmp_path)
    now = int(time.time())
    bad_tokens = {
        "missing": None,
        "garbage": "not.a.jwt",
        "foreign signature": stranger.mint("psychologist"),
        "expired": issuer.mint("psychologist", exp=now - 10),
        "not yet valid": issuer.mint("psychologist", nbf=now + 600),
        "wrong issuer": issuer.mint("psychologist", iss="https://evil.example.fr"),
        "wrong audience": issuer.mint("psychologist", aud="another-app", client_id="another-app"),
    }
    for name, token in bad_tokens.items():
        assert _call(gw, token) == (401, {"message": "Unauthorized"}), name


def test_unknown_routes_get_api_gateway_404(gateway):
    gw, _ = gateway
    assert gw.handle("GET", "/v1/nothing", [], b"")[0] == 404
    assert gw.handle("DELETE", "/v1/candidatures/c1", [], b"")[0] == 404


def test_stage_throttling_from_the_template_answers_429(gateway):
    from infra.gateway import TokenBucket

    gw, _ = gateway
    settings = load_template().http_api["DefaultRouteSettings"]
    assert (gw.throttle.rate, gw.throttle.capacity) == (
        settings["ThrottlingRateLimit"],
        settings["ThrottlingBurstLimit"],
    )
    saved = gw.throttle
    gw.throttle = TokenBucket(rate=0.001, burst=3)
    try:
        statuses = [gw.handle("GET", "/v1/candidatures/c1", [], b"")[0] for _ in range(5)]
    finally:
        gw.throttle = saved
    assert statuses == [401, 401, 401, 429, 429]


def test_public_routes_are_throttled_apart_and_tighter_than_the_stage(gateway):
    """A flood of searches is refused on its own route while authenticated routes keep their own quota."""
    from infra.gateway import TokenBucket

    gw, _ = gateway
    api = load_template().http_api
    stage = api["DefaultRouteSettings"]
    for route_key in ("GET /v1/psychologists/search", "GET /v1/psychologists/{psychologist_id}"):
        limits = api["RouteSettings"][route_key]
        assert limits["ThrottlingRateLimit"] < stage["ThrottlingRateLimit"]
        assert (gw.route_throttles[route_key].rate, gw.route_throttles[route_key].capacity) == (
            limits["ThrottlingRateLimit"],
            limits["ThrottlingBurstLimit"],
        )
    saved = gw.route_throttles["GET /v1/psychologists/search"]
    gw.route_throttles["GET /v1/psychologists/search"] = TokenBucket(rate=0.001, burst=2)
    try:
        searches = [gw.handle("GET", "/v1/psychologists/search", [], b"")[0] for _ in range(4)]
        other = gw.handle("GET", "/v1/candidatures/c1", [], b"")[0]
    finally:
        gw.route_throttles["GET /v1/psychologists/search"] = saved
    assert searches[2:] == [429, 429] and 429 not in searches[:2] and other == 401


def test_log_lines_of_the_gateway_drop_query_strings():
    from infra.gateway import without_query

    line = '"GET /v1/sessions/quota?nir=290057505612384&birth_date=1990-05-14 HTTP/1.1" 200 -'
    assert without_query(line) == '"GET /v1/sessions/quota HTTP/1.1" 200 -'
    assert without_query("/v1/sessions/quota") == "/v1/sessions/quota"
