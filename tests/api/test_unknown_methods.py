"""A method no route declares gets API Gateway's answer for no matching route, over HTTP: a JSON 404, not the
HTML 501 of Python's HTTP server."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT", "BREW"])
@pytest.mark.parametrize("path", ["/v1/candidatures", "/v1/psychologists/search", "/v1/no-such-route"])
@pytest.mark.parametrize("role", [None, "admin"])
def test_a_method_no_route_declares_gets_the_json_404_of_api_gateway(api, method, path, role):
    response = api.call(method, path, token=api.token(role) if role else None)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "Not Found"}
    assert response.headers["x-content-type-options"] == "nosniff"  # the edge headers, as on every answer
