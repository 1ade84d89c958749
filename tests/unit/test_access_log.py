"""The local gateway's access log: the template's AccessLogSettings format, one JSON line per API request, with the
request id the handler gets as requestContext.requestId and the answer as apigw-requestid."""

from __future__ import annotations

import json

import pytest

from infra.access_log import AccessLog, variables
from infra.dev_issuer import DevIssuer
from infra.gateway import Gateway
from infra.template import load_template

TEMPLATE = load_template()
NIR = "290057505612384"


class RecordingRuntime:
    """Stands in for the Lambda runtime: keeps each event, answers 200 or raises what it is told to."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.raises: Exception | None = None

    def invoke(self, function: str, event: dict) -> dict:
        self.events.append(event)
        if self.raises is not None:
            raise self.raises
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}


@pytest.fixture
def local(tmp_path):
    runtime = RecordingRuntime()
    issuer = DevIssuer(tmp_path / "issuer")
    gateway = Gateway(TEMPLATE, runtime, issuer, access_log=tmp_path / "logs" / "api-access.log")

    def lines() -> list[dict]:
        return [json.loads(line) for line in gateway.access_log.path.read_text().splitlines()]

    return gateway, runtime, issuer, lines


def test_the_gateway_fills_every_variable_of_the_templates_format(tmp_path):
    line_format = TEMPLATE.http_api["AccessLogSettings"]["Format"]
    assert "requestId" in variables(line_format)
    AccessLog(line_format, tmp_path / "access.log")  # refuses a variable the gateway does not fill
    with pytest.raises(ValueError, match=r"\$context.path"):
        AccessLog('{"path":"$context.path"}', tmp_path / "access.log")


def test_a_request_leaves_one_line_whose_request_id_the_handler_and_the_caller_got(local):
    gateway, runtime, issuer, lines = local
    token = issuer.mint("psychologist", sub="psy-log-1")
    headers = [("authorization", f"Bearer {token}"), ("user-agent", 'curl/8 "quoted"')]
    status, answer_headers, _ = gateway.handle("GET", f"/v1/candidatures/c-42?nir={NIR}", headers, b"", "10.0.0.7")

    assert status == 200
    ((line,), (event,)) = lines(), runtime.events
    assert line["requestId"] == event["requestContext"]["requestId"] == dict(answer_headers)["apigw-requestid"]
    assert line["time"] == event["requestContext"]["time"]
    assert {key: line[key] for key in ("ip", "method", "route", "status", "protocol", "userAgent", "sub")} == {
        "ip": "10.0.0.7",
        "method": "GET",
        "route": "GET /v1/candidatures/{candidature_id}",
        "status": "200",
        "protocol": "HTTP/1.1",
        "userAgent": 'curl/8 "quoted"',
        "sub": "psy-log-1",
    }
    assert int(line["latency"]) >= int(line["integrationLatency"]) >= 0 and line["responseLength"] == "2"
    assert (line["integrationError"], line["error"]) == ("-", "-")
    text = gateway.access_log.path.read_text()
    assert NIR not in text and "c-42" not in text and token not in text  # neither query, path value nor token


def test_the_gateways_own_refusals_and_a_crashed_handler_are_logged_with_their_error(local):
    gateway, runtime, issuer, lines = local
    gateway.handle("GET", "/v1/candidatures/c1", [], b"")
    gateway.handle("GET", "/v1/nowhere", [], b"")
    runtime.raises = RuntimeError(f"a message that could hold data: {NIR}")
    token = issuer.mint("psychologist")
    gateway.handle("GET", "/v1/candidatures/c1", [("authorization", f"Bearer {token}")], b"")
    gateway.too_large("POST", "/v1/candidatures", [], "127.0.0.1")

    unauthorized, unknown, crashed, too_large = lines()
    assert (unauthorized["status"], unauthorized["error"], unauthorized["sub"]) == ("401", "Unauthorized", "-")
    assert (unknown["status"], unknown["route"], unknown["error"]) == ("404", "-", "Not Found")
    assert (crashed["status"], crashed["integrationError"]) == ("500", "The function raised RuntimeError")
    assert (too_large["status"], too_large["error"]) == ("413", "Request Entity Too Large")
    assert len({line["requestId"] for line in lines()}) == 4
    assert NIR not in gateway.access_log.path.read_text()


def test_pages_are_not_api_requests(local, tmp_path):
    gateway, _, _, _ = local
    gateway.static_dirs = {"/": tmp_path}
    (tmp_path / "index.html").write_text("<p>page</p>")
    status, headers, _ = gateway.handle("GET", "/index.html", [], b"")
    assert status == 200 and "apigw-requestid" not in dict(headers)
    assert not gateway.access_log.path.exists()
