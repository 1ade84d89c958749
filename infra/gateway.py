"""Local API Gateway (HTTP API) emulator: routes, JWT authorizer and payload format 2.0 from template.yaml."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import mimetypes
import re
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt

from infra.access_log import CLAIMS, AccessLog
from infra.dev_issuer import DevIssuer
from infra.lambda_runtime import LambdaRuntime
from infra.template import Route, Template

log = logging.getLogger("gateway")

_QUERY = re.compile(r"\?[^\s\"]*")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # HTTP API's request payload limit
API_PREFIX = "/v1/"
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/javascript",
)


def edge_headers(policy: dict[str, Any]) -> dict[str, str]:
    """The security headers a CloudFront response headers policy of the template adds (with Override)."""
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    headers = {}
    if "ContentSecurityPolicy" in config:
        headers["content-security-policy"] = " ".join(config["ContentSecurityPolicy"]["ContentSecurityPolicy"].split())
    if "ContentTypeOptions" in config:
        headers["x-content-type-options"] = "nosniff"
    if "FrameOptions" in config:
        headers["x-frame-options"] = config["FrameOptions"]["FrameOption"]
    if "ReferrerPolicy" in config:
        headers["referrer-policy"] = config["ReferrerPolicy"]["ReferrerPolicy"]
    if "StrictTransportSecurity" in config:
        hsts = config["StrictTransportSecurity"]
        value = f"max-age={hsts['AccessControlMaxAgeSec']}"
        headers["strict-transport-security"] = value + ("; includeSubDomains" if hsts.get("IncludeSubdomains") else "")
    return headers


def _override(response: tuple[int, list[tuple[str, str]], bytes], extra: dict[str, str]):
    status, headers, body = response
    kept = [(name, value) for name, value in headers if name not in extra]
    return status, kept + list(extra.items()), body


def flatten_claims(claims: dict[str, Any]) -> dict[str, str]:
    """HTTP API hands claims to the integration as strings; arrays become "[a b]"."""
    flat = {}
    for name, value in claims.items():
        if isinstance(value, list):
            flat[name] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            flat[name] = str(value).lower()
        else:
            flat[name] = str(value)
    return flat


def request_time(moment: dt.datetime) -> str:
    """API Gateway's requestTime, in the common log format."""
    return moment.strftime("%d/%b/%Y:%H:%M:%S +0000")


def is_text(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().startswith(_TEXT_TYPES)


def build_event(
    route: Route,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    path_parameters: dict[str, str],
    claims: dict[str, Any] | None,
    source_ip: str,
    *,
    request_id: str | None = None,
    received: dt.datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = received or dt.datetime.now(dt.UTC)
    text = is_text(merged.get("content-type"))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": merged.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id or str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": request_time(now),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": bool(body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": flatten_claims(claims), "scopes": None}}
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()
    return event


class TokenBucket:
    """Stage throttling as API Gateway applies it: a steady rate with a burst allowance."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.capacity = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class Gateway:
    """Matches a request to a template route, authorizes it and invokes the route's handler."""

    def __init__(
        self,
        template: Template,
        runtime: LambdaRuntime,
        issuer: DevIssuer,
        static_dirs: dict[str, Path] | None = None,
        access_log: Path | None = None,
    ):
        # Like API Gateway, the most specific route wins: /v1/psychologists/search before /v1/psychologists/{id}.
        self.routes = sorted(template.routes, key=lambda route: route.path.count("{"))
        settings = template.http_api.get("DefaultRouteSettings", {})
        self.throttle = TokenBucket(
            settings.get("ThrottlingRateLimit", 10000), settings.get("ThrottlingBurstLimit", 5000)
        )
        # Routes with limits of their own (the public ones) are throttled apart from the rest.
        self.route_throttles = {
            route_key: TokenBucket(limits["ThrottlingRateLimit"], limits["ThrottlingBurstLimit"])
            for route_key, limits in template.http_api.get("RouteSettings", {}).items()
        }
        self.runtime = runtime
        self.issuer = issuer
        self.static_dirs = static_dirs or {}
        # What the CloudFront distribution in front of the API and the page adds to every answer.
        self.api_headers = edge_headers(template.resources["ApiHeadersPolicy"])
        self.static_headers = edge_headers(template.resources["AdminHeadersPolicy"]) | {"cache-control": "no-cache"}
        # The stage's access log (AccessLogSettings), one line per API request, when a file is given for it.
        line_format = template.http_api["AccessLogSettings"]["Format"]
        self.access_log = AccessLog(line_format, access_log) if access_log is not None else None

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None

    def authorize(self, headers: list[tuple[str, str]]) -> dict[str, Any] | None:
        value = next((v for k, v in headers if k.lower() == "authorization"), "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            token = value if value and "." in value and " " not in value else ""
        if not token:
            return None
        try:
            return self.issuer.verify(token.strip())
        except jwt.PyJWTError:
            return None

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str = "127.0.0.1"
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(target)
        # As the CloudFront distribution routes them: /v1/* to the API, anything else to the pages' bucket.
        static = None if parts.path.startswith(API_PREFIX) else self._static(method, parts.path)
        if static is not None:
            return _override(static, self.static_headers)
        request = self._request(method, headers, source_ip)
        response = self._api(request, parts, headers, body)
        return self._answered(request, response)

    def too_large(
        self, method: str, target: str, headers: list[tuple[str, str]], source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The answer to a request whose body exceeds the payload limit, refused before it is read."""
        if not urlsplit(target).path.startswith(API_PREFIX):
            return _override(_message(413, "Request Entity Too Large"), self.static_headers)
        request = self._request(method, headers, source_ip)
        return self._answered(request, _refused(request, 413, "Request Entity Too Large"))

    @staticmethod
    def _request(method: str, headers: list[tuple[str, str]], source_ip: str) -> dict[str, Any]:
        """What the access log knows of a request as it arrives; _api adds what it learns."""
        received = dt.datetime.now(dt.UTC)
        return {
            "requestId": str(uuid.uuid4()),
            "requestTime": request_time(received),
            "received": received,
            "started": time.perf_counter(),
            "httpMethod": method,
            "protocol": "HTTP/1.1",
            "identity.sourceIp": source_ip,
            "identity.userAgent": next((v for k, v in headers if k.lower() == "user-agent"), None),
        }

    def _answered(self, request: dict[str, Any], response: tuple[int, list[tuple[str, str]], bytes]):
        """Every API answer carries its request id (apigw-requestid) and leaves a line in the access log."""
        status, headers, body = _override(response, self.api_headers | {"apigw-requestid": request["requestId"]})
        if self.access_log is not None:
            latency = round((time.perf_counter() - request["started"]) * 1000)
            self.access_log.write(request | {"status": status, "responseLength": len(body), "responseLatency": latency})
        return status, headers, body

    def _api(self, request: dict[str, Any], parts, headers, body) -> tuple[int, list[tuple[str, str]], bytes]:
        method = request["httpMethod"]
        matched = self.match(method, parts.path)
        if matched is None:
            return _refused(request, 404, "Not Found")
        route, path_parameters = matched
        request["routeKey"] = route.route_key
        if not self.route_throttles.get(route.route_key, self.throttle).take():
            return _refused(request, 429, "Too Many Requests")
        if len(body) > MAX_PAYLOAD_BYTES:
            return _refused(request, 413, "Request Entity Too Large")
        claims = None
        if not route.public:
            claims = self.authorize(headers)
            if claims is None:
                return _refused(request, 401, "Unauthorized", [("www-authenticate", "Bearer")])
            request |= {f"{CLAIMS}{name}": value for name, value in flatten_claims(claims).items()}
        event = build_event(
            route,
            method,
            parts.path,
            parts.query,
            headers,
            body,
            path_parameters,
            claims,
            request["identity.sourceIp"],
            request_id=request["requestId"],
            received=request["received"],
        )
        started = time.perf_counter()
        try:
            result = self.runtime.invoke(route.function, event)
        except Exception as error:
            log.exception("handler %s crashed", route.function)
            request["integrationErrorMessage"] = f"The function raised {type(error).__name__}"
            return _refused(request, 500, "Internal Server Error")
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            request["integrationLatency"] = round(elapsed)
            log.info("%s %s -> %s (%.1f ms) %s", method, parts.path, route.function, elapsed, request["requestId"])
        return _integration_response(result)

    def _static(self, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
        for prefix, directory in self.static_dirs.items():
            if path == prefix.rstrip("/"):
                return 308, [("location", prefix)], b""
            if not path.startswith(prefix):
                continue
            if method not in {"GET", "HEAD"}:
                return _message(405, "Method Not Allowed")
            relative = path[len(prefix) :] or "index.html"
            file = (directory / relative).resolve()
            if directory.resolve() not in file.parents or not file.is_file():
                return _message(404, "Not Found")
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type == "application/javascript":
                content_type += "; charset=utf-8"
            return 200, [("content-type", content_type)], file.read_bytes()
        return None


def without_query(text: str) -> str:
    """Any `?query` in a log argument (a request line, a target) cut off."""
    return _QUERY.sub("", text)


def _message(status: int, message: str, extra: list[tuple[str, str]] | None = None):
    body = json.dumps({"message": message}).encode()
    return status, [("content-type", "application/json"), *(extra or [])], body


def _refused(request: dict[str, Any], status: int, message: str, extra: list[tuple[str, str]] | None = None):
    """API Gateway's own answer, its message also the access log's $context.error.message."""
    request["error.message"] = message
    return _message(status, message, extra)


def _integration_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Format 2.0 response: a dict with statusCode, or any JSON value meaning 200."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [("content-type", "application/json")], json.dumps(result).encode()
    headers = [(k.lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name.lower(), str(v)) for v in values)
    headers.extend(("set-cookie", cookie) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return int(result["statusCode"]), headers, payload


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"
    server_version = "msp-local-gateway"
    # Headers and body leave in two writes: with Nagle's algorithm the body waited for the client's delayed
    # ACK, adding about 40 ms to every keep-alive answer (more than the handler itself takes).
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            status, headers, body = self.gateway.too_large(
                self.command, self.path, list(self.headers.items()), self.client_address[0]
            )
            self.close_connection = True
        else:
            body_in = self.rfile.read(length) if length else b""
            status, headers, body = self.gateway.handle(
                self.command, self.path, list(self.headers.items()), body_in, self.client_address[0]
            )
        self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
        names = {name for name, _ in headers}
        for name, value in headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        # The base class answers a method without a do_<METHOD> with an HTML 501; API Gateway routes every method
        # (TRACE, PROPFIND, ...) and answers one no route declares with its JSON 404, as the gateway does.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the query string, which can hold personal data
        # (a client still sending ?nir=... to a route): like API Gateway without access logs, keep the path only.
        log.debug(format, *(without_query(arg) if isinstance(arg, str) else arg for arg in args))


class _GatewayServer(ThreadingHTTPServer):
    # The default listen backlog (5) resets connections when clients open many at once, which API Gateway
    # never does; the concurrency tests release 40 requests together.
    request_queue_size = 256


def serve(gateway: Gateway, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (_RequestHandler,), {"gateway": gateway})
    server = _GatewayServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server
