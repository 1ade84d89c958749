"""Candidature use cases of a psychologist: create, read, edit, document, submit, withdraw."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from msp.auth import Caller, Role
from msp.candidatures.documents import SNIFF_BYTES, TAIL_BYTES, verdict_for
from msp.candidatures.models import (
    EDITABLE_STATUSES,
    MAX_DOCUMENTS_PER_CANDIDATURE,
    AuditEvent,
    Candidature,
    CandidatureFields,
    DecisionEvent,
    Document,
    DocumentKind,
    DocumentStatus,
    DocumentUploadRequest,
    UploadTicket,
)
from msp.candidatures.ports import CandidatureRepository, DecisionEvents, DocumentMetrics, DocumentStorage
from msp.candidatures.workflow import Action, plan_transition
from msp.clock import now_iso
from msp.errors import IncompleteCandidature, NotEditable, NotFound, TooManyDocuments, VersionMismatch

if TYPE_CHECKING:
    from msp.candidatures.notifications import Mailer

log = logging.getLogger(__name__)

UPLOAD_URL_SECONDS = 300
UPLOAD_PREFIX = "uploads/"
DOCUMENT_PREFIX = "documents/"


def upload_key(candidature_id: str, document_id: str) -> str:
    return f"{UPLOAD_PREFIX}{candidature_id}/{document_id}"


def stored_document_key(candidature_id: str, document_id: str) -> str:
    return f"{DOCUMENT_PREFIX}{candidature_id}/{document_id}"


def _is_id(text: str) -> bool:
    """Ids are UUIDs in their canonical form (str(uuid.uuid4()))."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(candidature id, document id) of an upload key, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != UPLOAD_PREFIX or not all(_is_id(part) for part in parts[1:]):
        return None
    return parts[1], parts[2]


def system_event(previous: Candidature, updated: Candidature, actor: str, action: str) -> AuditEvent:
    """The audit event of a change a scheduled job made (no person acted: role `system`)."""
    return AuditEvent(
        candidature_id=updated.id,
        version=updated.version,
        actor=actor,
        role="system",
        action=action,
        from_status=previous.status,
        to_status=updated.status,
        at=updated.updated_at,
    )


def audit_event(
    candidature: Candidature,
    caller: Caller,
    role: Role,
    action: str,
    previous: Candidature | None,
    reason: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        candidature_id=candidature.id,
        version=candidature.version,
        actor=caller.sub,
        role=role.value,
        action=action,
        from_status=previous.status if previous else None,
        to_status=candidature.status,
        reason=reason,
        at=candidature.updated_at,
    )


def _own(store: CandidatureRepository, caller: Caller, candidature_id: str) -> Candidature:
    """A psychologist's own candidature; someone else's answers exactly like a missing one."""
    caller.require(Role.PSYCHOLOGIST)
    candidature = store.get(candidature_id)
    if candidature.owner_sub != caller.sub:
        raise NotFound("No candidature with this id.")
    return candidature


def _require_editable(candidature: Candidature) -> None:
    if candidature.status not in EDITABLE_STATUSES:
        raise NotEditable(
            f"A candidature can only be changed in draft or info_requested, not {candidature.status.value}."
        )


def _linked(store: CandidatureRepository, candidature: Candidature) -> Candidature:
    """The candidature linked to the last one that held its identifier, if it is not linked yet."""
    identifier = candidature.fields.identifier
    if candidature.previous_candidature_id or identifier is None:
        return candidature
    previous = store.previous_holder(identifier.type, identifier.value)
    if previous is None or previous == candidature.id:
        return candidature
    return candidature.model_copy(update={"previous_candidature_id": previous})


def create_candidature(store: CandidatureRepository, caller: Caller, fields: CandidatureFields) -> Candidature:
    caller.require(Role.PSYCHOLOGIST)
    now = now_iso()
    candidature = Candidature(id=str(uuid.uuid4()), owner_sub=caller.sub, created_at=now, updated_at=now, fields=fields)
    candidature = _linked(store, candidature)
    store.save(
        candidature, previous=None, audit=audit_event(candidature, caller, Role.PSYCHOLOGIST, "create", previous=None)
    )
    return candidature


def get_own_candidature(store: CandidatureRepository, caller: Caller, candidature_id: str) -> Candidature:
    return _own(store, caller, candidature_id)


def patch_candidature(
    store: CandidatureRepository, caller: Caller, candidature_id: str, changes: CandidatureFields, if_match: int
) -> Candidature:
    """Apply the fields present in `changes` (an explicit null clears a field)."""
    current = _own(store, caller, candidature_id)
    if current.version != if_match:
        raise VersionMismatch(
            f"Version {if_match} is stale: the candidature is at version {current.version}. Read it again and retry."
        )
    _require_editable(current)
    merged = current.fields.model_dump(mode="json") | changes.model_dump(mode="json", include=changes.model_fields_set)
    updated = current.model_copy(
        update={
            "fields": CandidatureFields.model_validate(merged),
            "version": current.version + 1,
            "updated_at": now_iso(),
        }
    )
    updated = _linked(store, updated)
    store.save(updated, previous=current, audit=None)
    return updated


def request_document_upload(
    store: CandidatureRepository,
    bucket: DocumentStorage,
    caller: Caller,
    candidature_id: str,
    request: DocumentUploadRequest,
) -> UploadTicket:
    current = _own(store, caller, candidature_id)
    _require_editable(current)
    if len(current.documents) >= MAX_DOCUMENTS_PER_CANDIDATURE:
        raise TooManyDocuments(f"A candidature holds at most {MAX_DOCUMENTS_PER_CANDIDATURE} documents.")
    document = Document(
        document_id=str(uuid.uuid4()),
        kind=request.kind,
        content_type=request.content_type,
        declared_size=request.size,
        requested_at=now_iso(),
    )
    url, fields = bucket.presign_upload(
        upload_key(current.id, document.document_id), request.content_type.value, request.size, UPLOAD_URL_SECONDS
    )
    updated = current.model_copy(
        update={
            "documents": [*current.documents, document],
            "version": current.version + 1,
            "updated_at": document.requested_at,
        }
    )
    store.save(updated, previous=current, audit=None)
    return UploadTicket(document_id=document.document_id, url=url, fields=fields, expires_in=UPLOAD_URL_SECONDS)


def verify_uploaded_document(
    store: CandidatureRepository,
    bucket: DocumentStorage,
    metrics: DocumentMetrics,
    key: str,
    mailer: Mailer | None = None,
) -> DocumentStatus | None:
    """Check one uploaded object and record the verdict; None when the object belongs to nothing. A refused file
    is told to the psychologist, with the reason, and the verdict counted in `metrics`, by the run that records it.

    The upload key is single-use: once the verdict is recorded, any later object under it is deleted unread.
    Safe to run again on the same key, as S3 redelivers and Lambda retries a run that failed: a verified file is
    copied to documents/ before the verdict is recorded, and the upload is deleted only after, so a run stopped
    at any step leaves the document pending with its upload in place, and the next run finishes the job.
    """
    parsed = parse_upload_key(key)
    if parsed is None:
        return None
    candidature_id, document_id = parsed
    try:
        candidature = store.get(candidature_id)
    except NotFound:
        bucket.delete(key)
        return None
    document = next((d for d in candidature.documents if d.document_id == document_id), None)
    if document is None:
        return None
    if document.status != DocumentStatus.PENDING:
        bucket.delete(key)  # a run stopped between the verdict and this delete left the upload behind
        return document.status
    try:
        upload = bucket.inspect(key, SNIFF_BYTES, TAIL_BYTES)
    except NotFound:
        return None  # gone (expired by the bucket's lifecycle): the document stays pending until uploaded again
    reason = verdict_for(upload, document.content_type, document.declared_size)
    if reason is None:
        # The inspected version, not the latest: the presigned POST stays usable, so another file may land meanwhile.
        bucket.copy(key, stored_document_key(candidature_id, document_id), upload)
        verdict = document.model_copy(update={"status": DocumentStatus.VERIFIED, "size": upload.size})
    else:
        verdict = document.model_copy(update={"status": DocumentStatus.REJECTED, "reason": reason, "size": upload.size})
    if store.record_document_verdict(candidature_id, verdict):
        metrics.document_checked(verdict.status)
        _tell_document_rejected(mailer, candidature, verdict)
    bucket.delete(key)
    return verdict.status


def _tell_document_rejected(mailer: Mailer | None, candidature: Candidature, document: Document) -> None:
    """A refused file is told once, by the run that recorded the verdict; a failed send is logged, not retried:
    the verdict and its reason stay readable on the candidature."""
    if mailer is None or document.status is not DocumentStatus.REJECTED:
        return
    from msp.candidatures.notifications import document_rejected_email

    try:
        mailer.send(document_rejected_email(candidature, document))
    except Exception:
        log.exception("document rejection not e-mailed", extra={"candidature_id": candidature.id})


def _missing_for_submission(candidature: Candidature) -> list[dict[str, str]]:
    missing = [{"field": name, "message": "required to submit"} for name in candidature.fields.missing_for_submission()]
    verified = {d.kind for d in candidature.documents if d.status == DocumentStatus.VERIFIED}
    missing += [
        {"field": f"documents.{kind.value}", "message": "upload a verified document of this kind"}
        for kind in DocumentKind
        if kind not in verified
    ]
    return missing


def _psychologist_transition(
    store: CandidatureRepository, caller: Caller, candidature_id: str, action: Action
) -> Candidature:
    """Submit or withdraw one's own candidature."""
    current = _own(store, caller, candidature_id)
    target = plan_transition(current.status, action, caller.roles, reason=None)
    now = now_iso()
    changes: dict = {"status": target, "version": current.version + 1, "updated_at": now}
    if action is Action.SUBMIT:
        missing = _missing_for_submission(current)
        if missing:
            raise IncompleteCandidature("The candidature is not complete yet.", details=missing)
        changes |= {"submitted_at": now, "status_reason": None}
    updated = current.model_copy(update=changes)
    store.save(
        updated, previous=current, audit=audit_event(updated, caller, Role.PSYCHOLOGIST, action.value, previous=current)
    )
    return updated


def submit_candidature(
    store: CandidatureRepository, publisher: DecisionEvents, caller: Caller, candidature_id: str
) -> Candidature:
    """Send a complete candidature for review; the psychologist then gets an acknowledgement by e-mail."""
    submitted = _psychologist_transition(store, caller, candidature_id, Action.SUBMIT)
    publisher.publish(DecisionEvent.of(submitted, Action.SUBMIT.value))
    return submitted


def withdraw_candidature(store: CandidatureRepository, caller: Caller, candidature_id: str) -> Candidature:
    return _psychologist_transition(store, caller, candidature_id, Action.WITHDRAW)
