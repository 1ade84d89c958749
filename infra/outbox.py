"""A local SES (API v2, SendEmail): each message sent lands as a readable .eml file in the outbox folder.

Functions send e-mail with boto3 exactly as in AWS; the stack points AWS_ENDPOINT_URL_SESV2 here, so the
production package holds no local-only mailer.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTPUTF8
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.components import LOOPBACK, serve_in_background

log = logging.getLogger("outbox")

SEND_EMAIL_PATH = "/v2/email/outbound-emails"
REFERENCE_HEADER = "X-Reference"


def write_message(folder: Path, request: dict[str, Any]) -> Path:
    """A SendEmail request (Simple content) as `<time>-<reference>.eml`, written whole or not at all."""
    simple = request["Content"]["Simple"]
    headers = {header["Name"]: header["Value"] for header in simple.get("Headers", [])}
    reference = headers.get(REFERENCE_HEADER) or uuid.uuid4().hex
    mime = EmailMessage(policy=SMTPUTF8)
    mime["From"] = request["FromEmailAddress"]
    mime["To"] = ", ".join(request["Destination"]["ToAddresses"])
    mime["Subject"] = simple["Subject"]["Data"]
    for name, value in headers.items():
        mime[name] = value
    mime.set_content(simple["Body"]["Text"]["Data"], cte="8bit")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{reference}.eml"
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(mime.as_bytes())
    temporary.replace(path)
    return path


class LocalSes:
    def __init__(self, folder: Path):
        self.folder = folder
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        outbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if self.path != SEND_EMAIL_PATH:
                    self._answer(404, {"message": f"Only SendEmail is served here, not {self.path}."})
                    return
                try:
                    path = write_message(outbox.folder, json.loads(body))
                except (ValueError, KeyError, TypeError) as error:
                    self._answer(400, {"message": f"Not a SendEmail request with Simple content: {error!r}"})
                    return
                self._answer(200, {"MessageId": path.stem})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        serve_in_background(self.server, "local-ses")
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
