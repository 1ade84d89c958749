"""A small client of the HTTP API, used by the demo loader, the tests and the benchmarks."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from infra.dev_issuer import DevIssuer

# A minimal, valid one-page PDF.
SAMPLE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@dataclass
class ApiClient:
    base_url: str
    issuer: DevIssuer
    session: requests.Session = field(default_factory=requests.Session)

    def token(self, role: str, sub: str | None = None, departments: str | None = None) -> str:
        return self.issuer.mint(role, sub=sub, departments=departments)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        return self.session.request(
            method, f"{self.base_url}{path}", json=json, headers=all_headers, timeout=30, **kwargs
        )

    def create_candidature(self, token: str, fields: dict[str, Any], key: str | None = None) -> requests.Response:
        return self.call(
            "POST", "/v1/candidatures", token=token, json=fields, headers={"Idempotency-Key": key or str(uuid.uuid4())}
        )

    def declare_session(self, token: str, body: dict[str, Any], key: str | None = None) -> requests.Response:
        return self.call(
            "POST", "/v1/sessions", token=token, json=body, headers={"Idempotency-Key": key or str(uuid.uuid4())}
        )

    def upload_document(
        self,
        token: str,
        candidature_id: str,
        kind: str,
        content: bytes,
        content_type: str = "application/pdf",
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        """Request a presigned POST, then upload to the S3 server as a browser would."""
        ticket = self.call(
            "POST",
            f"/v1/candidatures/{candidature_id}/documents",
            token=token,
            json={"kind": kind, "content_type": content_type, "size": declared_size or len(content)},
        )
        ticket.raise_for_status()
        body = ticket.json()
        upload = body["upload"]
        response = requests.post(
            upload["url"], data=upload["fields"], files={"file": (f"{kind}.bin", content, content_type)}, timeout=30
        )
        return {"document_id": body["document_id"], "upload_status": response.status_code, "upload_body": response.text}

    def wait_document(self, token: str, candidature_id: str, document_id: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            candidature = self.call("GET", f"/v1/candidatures/{candidature_id}", token=token).json()
            document = next(d for d in candidature["documents"] if d["document_id"] == document_id)
            if document["status"] != "pending" or time.monotonic() > deadline:
                return document
            time.sleep(0.1)
