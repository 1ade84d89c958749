"""What a psychologist can ask about themselves: their candidatures and convention (`GET /v1/me`), and everything
the service holds about them, as one document (`GET /v1/me/export`, their right of access under the RGPD)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msp.auth import Caller, Role
from msp.candidatures.models import INACTIVE_STATUSES, Candidature, DocumentStatus
from msp.candidatures.ports import CandidatureRepository, DocumentStorage
from msp.candidatures.use_cases import stored_document_key

if TYPE_CHECKING:
    from msp.sessions.rules import PatientKeyring
    from msp.sessions.statements import SessionsOfPsychologist

EXPORT_LINK_SECONDS = 300
_CONVENTION_FIELDS = ("status", "candidature_id", "department", "start_date", "end_date", "updated_at")


def _convention(store: CandidatureRepository, caller: Caller) -> dict[str, Any] | None:
    found = store.convention(caller.sub)
    return {name: found.get(name) for name in _CONVENTION_FIELDS} if found else None


def _current_first(candidatures: list[Candidature], convention: dict[str, Any] | None) -> list[Candidature]:
    """The candidature that holds the convention, else the newest still active, then the others newest first."""
    held = convention["candidature_id"] if convention else None
    current = next((c for c in candidatures if c.id == held), None) or next(
        (c for c in candidatures if c.status not in INACTIVE_STATUSES), None
    )
    return ([current] if current else []) + [c for c in candidatures if c is not current]


def my_account(store: CandidatureRepository, caller: Caller) -> dict[str, Any]:
    """The caller's candidatures (current first) and convention, so a client needs no stored id."""
    caller.require(Role.PSYCHOLOGIST)
    convention = _convention(store, caller)
    ordered = _current_first(store.owned_by(caller.sub), convention)
    summaries = [
        {
            "id": c.id,
            "status": c.status.value,
            "version": c.version,
            "department": c.department,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "submitted_at": c.submitted_at,
            "previous_candidature_id": c.previous_candidature_id,
            "convention_start": c.convention_start.isoformat() if c.convention_start else None,
            "convention_end": c.convention_end.isoformat() if c.convention_end else None,
        }
        for c in ordered
    ]
    return {"sub": caller.sub, "candidatures": summaries, "convention": convention}


def _documents_with_links(bucket: DocumentStorage, candidature: Candidature) -> list[dict[str, Any]]:
    documents = []
    for document in candidature.documents:
        entry = document.public()
        if document.status is DocumentStatus.VERIFIED:
            entry["download_url"] = bucket.presign_download(
                stored_document_key(candidature.id, document.document_id),
                document.content_type.value,
                f"{document.kind.value}-{document.document_id}",
                EXPORT_LINK_SECONDS,
            )
            entry["download_expires_in"] = EXPORT_LINK_SECONDS
        documents.append(entry)
    return documents


def export_personal_data(
    store: CandidatureRepository,
    bucket: DocumentStorage,
    sessions: SessionsOfPsychologist,
    keyring: PatientKeyring,
    caller: Caller,
    exported_at: str,
) -> dict[str, Any]:
    """Everything held about the caller: candidatures with their audit trails and documents (short-lived links
    to the verified files), the convention, and every session they declared as their statements show it."""
    from msp.sessions.statements import statement_line

    account = my_account(store, caller)
    candidatures = []
    for candidature in store.owned_by(caller.sub):
        body = candidature.public()
        body["documents"] = _documents_with_links(bucket, candidature)
        body["history"] = [event.model_dump(mode="json") for event in store.history(candidature.id)]
        candidatures.append(body)
    items, _ = sessions.sessions_of(caller.sub, "0000-00-00", "9999-12-31", None, None)
    return {
        "exported_at": exported_at,
        "sub": caller.sub,
        "links_expire_in": EXPORT_LINK_SECONDS,
        "convention": account["convention"],
        "candidatures": candidatures,
        "sessions": [statement_line(item, keyring).model_dump(mode="json") for item in items],
    }
