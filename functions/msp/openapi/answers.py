"""Answers the handlers build as dicts rather than from a model: their schemas, for the document only.

A route whose answer is a model of its feature package names that model in routes.py; one that answers a dict
(a candidature's documents and state, an upload ticket, a history) is described here, field for field.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from msp.candidatures.models import AuditEvent, DocumentKind, DocumentStatus, DocumentType, Status
from msp.candidatures.workflow import Action


class DocumentView(BaseModel):
    """A document as every read of its candidature lists it."""

    document_id: str = Field(json_schema_extra={"format": "uuid"})
    kind: DocumentKind
    content_type: DocumentType
    status: DocumentStatus
    reason: str | None = Field(description="Why the document was rejected.")
    size: int | None = Field(description="Its size in bytes, once verified.")


class CandidatureState(BaseModel):
    """What every read of a candidature adds to its fields (Candidature.public)."""

    id: str = Field(json_schema_extra={"format": "uuid"})
    status: Status
    version: int = Field(ge=1, description="Send it back as If-Match (an edit) or expected_version (a decision).")
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})
    submitted_at: str | None = Field(json_schema_extra={"format": "date-time"})
    status_reason: str | None = Field(description="The reviewer's reason for the last decision.")
    department: str | None = Field(description="The department of its first practice.")
    documents: list[DocumentView]
    previous_candidature_id: str | None = Field(
        description="The candidature this one follows: the last one that held the same identifier."
    )
    convention_start: dt.date | None = Field(description="Once accepted: the convention's first day.")
    convention_end: dt.date | None = Field(description="Once an end is decided: the convention's last day.")
    allowed_actions: list[Action] | None = Field(
        default=None, description="For a reviewer of its department only: the decisions open to them now."
    )


class PresignedPost(BaseModel):
    """Post these form fields, then the file as the last field named `file`, to `url`."""

    url: str = Field(json_schema_extra={"format": "uri"})
    fields: dict[str, str]


class DocumentUpload(BaseModel):
    document_id: str = Field(json_schema_extra={"format": "uuid"})
    expires_in: int = Field(description="Seconds the upload stays possible.")
    upload: PresignedPost


class CandidatureHistory(BaseModel):
    candidature_id: str = Field(json_schema_extra={"format": "uuid"})
    events: list[AuditEvent]
