"""Every answer of the API and the pages carries the security headers of the template's edge policies."""

from __future__ import annotations

import uuid

import pytest

REQUIRED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _check(response):
    headers = {k.lower(): v for k, v in response.headers.items()}
    for name, value in REQUIRED.items():
        assert headers.get(name) == value, (response.url, response.status_code, name)
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert headers["strict-transport-security"].startswith("max-age=")
    return headers


@pytest.mark.parametrize(
    ("method", "path", "role", "status"),
    [
        ("GET", "/v1/openapi.json", None, 200),
        ("GET", f"/v1/candidatures/{uuid.uuid4()}", None, 401),
        ("GET", f"/v1/candidatures/{uuid.uuid4()}", "psychologist", 404),
        ("GET", "/v1/review/candidatures", "psychologist", 403),
        ("GET", "/v1/review/candidatures", "admin", 200),
        ("GET", "/v1/no-such-route", None, 404),
        ("POST", "/v1/sessions", "psychologist", 415),
    ],
)
def test_api_answers_carry_security_headers(api, method, path, role, status):
    token = api.token(role, departments="*" if role == "reviewer" else None) if role else None
    response = api.call(method, path, token=token)
    assert response.status_code == status, response.text
    headers = _check(response)
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/app.js",
        "/admin/common.js",
        "/admin/app.css",
        "/admin/missing.html",
        "/",
        "/app.js",
        "/config.json",
        "/vendor/leaflet/leaflet.js",
        "/missing.html",
    ],
)
def test_page_answers_carry_a_csp_without_unsafe_inline(api, path):
    response = api.session.get(f"{api.base_url}{path}", timeout=10)
    assert response.status_code == (404 if "missing" in path else 200)
    headers = _check(response)
    assert "script-src 'self'" in headers["content-security-policy"]
