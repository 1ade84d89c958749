"""A local SES (API v2, SendEmail): each message sent lands as a readable .eml file in the outbox folder.

Functions send e-mail with boto3 exactly as in AWS; the stack points AWS_ENDPOINT_URL_SESV2 here, so the
production package holds no local-only mailer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTPUTF8
from pathlib import Path
from typing import Any

from infra.loopback_api import LoopbackApi

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
        self.api = LoopbackApi("local-ses", self._answer, content_type="application/json")
        # While set, SendEmail is refused as SES refuses a message (MessageRejected), with this reason: how tests
        # make the sending of a notice fail.
        self.refusal: str | None = None

    def _answer(self, path: str, _headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if path != SEND_EMAIL_PATH:
            return 404, {"message": f"Only SendEmail is served here, not {path}."}
        if self.refusal is not None:
            return 400, {"__type": "MessageRejected", "message": self.refusal}
        try:
            written = write_message(self.folder, json.loads(body))
        except (ValueError, KeyError, TypeError) as error:
            return 400, {"message": f"Not a SendEmail request with Simple content: {error!r}"}
        return 200, {"MessageId": written.stem}

    def start(self) -> str:
        return self.api.start()

    def stop(self) -> None:
        self.api.stop()
