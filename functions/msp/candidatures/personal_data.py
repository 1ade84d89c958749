"""What a psychologist can ask about themselves: their candidatures and convention (`GET /v1/me`), and everything
the service holds about them, as one document (`GET /v1/me/export`, their right of access under the RGPD)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from msp.auth import Caller, Role
from msp.candidatures.models import INACTIVE_STATUSES, Candidature, DocumentStatus, Status
from msp.candidatures.ports import CandidatureRepository, DocumentStorage
from msp.candidatures.use_cases import stored_document_key
from msp.sessions.statements import SessionsOfPsychologist, StatementLine, statement_line

if TYPE_CHECKING:
    from msp.sessions.rules import PatientKeyring

EXPORT_LINK_SECONDS = 300


class ConventionView(BaseModel):
    status: str
    candidature_id: str
    department: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    updated_at: str


class CandidatureSummary(BaseModel):
    id: str
    status: Status
    version: int
    department: str | None
    created_at: str
    updated_at: str
    submitted_at: str | None
    previous_candidature_id: str | None
    convention_start: dt.date | None
    convention_end: dt.date | None


class Account(BaseModel):
    """`GET /v1/me`: the caller's candidatures, the current one first, and their convention if any."""

    sub: str
    candidatures: list[CandidatureSummary]
    convention: ConventionView | None


class PersonalDataExport(BaseModel):
    """`GET /v1/me/export`: every candidature as it reads, with its audit trail (`history`) and documents (with a
    `download_url` valid `links_expire_in` seconds for the verified ones), the convention, the sessions."""

    exported_at: str
    sub: str
    links_expire_in: int
    convention: ConventionView | None
    candidatures: list[dict[str, Any]]
    sessions: list[StatementLine]


def _convention(store: CandidatureRepository, caller: Caller) -> ConventionView | None:
    found = store.convention(caller.sub)
    return (
        ConventionView.model_validate({name: found.get(name) for name in ConventionView.model_fields})
        if found
        else None
    )


def _current_first(candidatures: list[Candidature], convention: ConventionView | None) -> list[Candidature]:
    """The candidature that holds a live convention, else the newest still active, then the others newest first."""
    held = convention.candidature_id if convention and convention.status == "accepted" else None
    # Stable sort on (not the holder, not active): the holder first, then the active ones, newest first each.
    return sorted(candidatures, key=lambda c: (c.id != held, c.status in INACTIVE_STATUSES))


def _account(caller: Caller, candidatures: list[Candidature], convention: ConventionView | None) -> Account:
    summaries = [
        CandidatureSummary.model_validate(
            {name: getattr(c, name) for name in CandidatureSummary.model_fields} | {"department": c.department}
        )
        for c in _current_first(candidatures, convention)
    ]
    return Account(sub=caller.sub, candidatures=summaries, convention=convention)


def my_account(store: CandidatureRepository, caller: Caller) -> Account:
    """The caller's candidatures (current first) and convention, so a client needs no stored id."""
    caller.require(Role.PSYCHOLOGIST)
    return _account(caller, store.owned_by(caller.sub), _convention(store, caller))


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
) -> PersonalDataExport:
    """Everything held about the caller: candidatures with their audit trails and documents (short-lived links
    to the verified files), the convention, and every session they declared as their statements show it."""
    caller.require(Role.PSYCHOLOGIST)
    candidatures = []
    for candidature in store.owned_by(caller.sub):
        body = candidature.public()
        body["documents"] = _documents_with_links(bucket, candidature)
        body["history"] = [event.model_dump(mode="json") for event in store.history(candidature.id)]
        candidatures.append(body)
    items, _ = sessions.sessions_of(caller.sub, "0000-00-00", "9999-12-31", None, None)
    return PersonalDataExport(
        exported_at=exported_at,
        sub=caller.sub,
        links_expire_in=EXPORT_LINK_SECONDS,
        convention=_convention(store, caller),
        candidatures=candidatures,
        sessions=[statement_line(item, keyring) for item in items],
    )
