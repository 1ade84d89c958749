"""Candidatures written straight through the storage module: fast set-up where the API path is tested elsewhere."""

from __future__ import annotations

import uuid
from typing import Any


def store_candidature(
    fields: dict[str, Any],
    *,
    owner_sub: str,
    status: str = "submitted",
    document_status: str = "verified",
    document_size: int = 1000,
    actor: str = "test-fixture",
    role: str = "fixture",
    action: str = "fixture",
):
    """Save a candidature with one PDF document of each kind and its creation audit event (version 1)."""
    # msp reads its settings from the environment when imported: only once the stack has set it.
    from msp.candidatures.convention import decision_effects
    from msp.candidatures.models import AuditEvent, Candidature, CandidatureFields, Document, DocumentKind, Status
    from msp.clock import now_iso
    from msp.storage.candidatures import candidature_store

    now = now_iso()
    candidature = Candidature(
        id=str(uuid.uuid4()),
        owner_sub=owner_sub,
        status=Status(status),
        created_at=now,
        updated_at=now,
        submitted_at=None if status == "draft" else now,
        fields=CandidatureFields.model_validate(fields),
        documents=[
            Document(
                document_id=str(uuid.uuid4()),
                kind=kind,
                content_type="application/pdf",
                declared_size=document_size,
                size=document_size,
                status=document_status,
                requested_at=now,
            )
            for kind in DocumentKind
        ],
    )
    audit = AuditEvent(
        candidature_id=candidature.id,
        version=1,
        actor=actor,
        role=role,
        action=action,
        to_status=candidature.status,
        at=now,
    )
    # Stored already decided: an accepted one comes with its convention and listing, as a decision writes them.
    candidature_store().save(candidature, previous=None, audit=audit, effects=decision_effects(None, candidature))
    return candidature
