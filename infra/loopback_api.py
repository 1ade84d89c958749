"""The HTTP server the local stand-ins of AWS APIs (EventBridge, SES, Cognito) answer on, on loopback.

Each stand-in gives one function: (path, headers by lowercase name, raw body) -> (status, JSON document). boto3
reaches it through the service's AWS_ENDPOINT_URL_<SERVICE> variable, exactly as it would reach AWS.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.components import LOOPBACK, serve_in_background

Answer = Callable[[str, Mapping[str, str], bytes], tuple[int, dict[str, Any]]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client process that ended with its connection kept alive (make redrive) resets it: no fault here.
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            super().handle_error(request, client_address)


class LoopbackApi:
    def __init__(self, name: str, answer: Answer, content_type: str = "application/x-amz-json-1.1"):
        self.name = name
        self.answer = answer
        self.content_type = content_type
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        api = self
        log = logging.getLogger(self.name)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, document = api.answer(self.path, headers, self.rfile.read(length))
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("content-type", api.content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self.server = _Server((LOOPBACK, 0), Handler)
        serve_in_background(self.server, self.name)
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def unknown_operation(target: str) -> tuple[int, dict[str, Any]]:
    return 400, {"__type": "UnknownOperationException", "message": target}
