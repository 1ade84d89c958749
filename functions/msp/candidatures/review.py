"""Review use cases: reading in scope, the reviewer's queue, transitions, history, documents.

Scope: a reviewer acts only in the departments of their `msp:departments` claim, which admins assign (a candidature
belongs to the department of its first practice); admins act everywhere. Anything out of scope
answers exactly like a missing candidature (404), so its existence is never revealed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, StringConstraints, WithJsonSchema, field_validator, model_validator

from msp import geography
from msp.auth import ALL_DEPARTMENTS, Caller, Role
from msp.candidatures.convention import decision_effects
from msp.candidatures.leaving import dated_end
from msp.candidatures.models import (
    QUEUE_STATUSES,
    AuditEvent,
    Candidature,
    DecisionEvent,
    DocumentStatus,
    DownloadTicket,
    QueuePage,
    Status,
    Strict,
)
from msp.candidatures.ports import CandidatureRepository, DecisionEvents, DocumentStorage, ReviewQueue
from msp.candidatures.use_cases import audit_event, stored_document_key
from msp.candidatures.workflow import Action, allowed_actions, plan_transition
from msp.clock import now_iso, programme_today
from msp.documented import Documented
from msp.errors import DocumentNotAvailable, NotFound, OutOfScope, StaleDecision, VersionMismatch
from msp.geography import DEPARTMENT_CODES

REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
# Actions the psychologist is told about by e-mail (start_review is internal bookkeeping).
DECISIONS = frozenset({Action.REQUEST_INFO, Action.ACCEPT, Action.REJECT, Action.DECONVENTION})
DOWNLOAD_URL_SECONDS = 300
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class TransitionRequest(Strict):
    action: Action
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    expected_version: int = Field(ge=1)
    # deconvention only: the convention's last day (today when left out); a later day keeps it listed until then.
    effective_date: (
        Annotated[
            dt.date,
            Documented(description="With the deconvention action only: the convention's last day, today or later."),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _effective_date_of_a_deconvention(self) -> TransitionRequest:
        if self.effective_date is not None and self.action is not Action.DECONVENTION:
            raise ValueError("effective_date goes with the deconvention action only")
        return self


class QueueQuery(Strict):
    status: Annotated[
        Status, WithJsonSchema({"type": "string", "enum": sorted(status.value for status in QUEUE_STATUSES)})
    ] = Status.SUBMITTED
    department: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True), DEPARTMENT_CODES] | None = None
    cursor: (
        Annotated[
            str,
            StringConstraints(max_length=2000),
            Documented(description="The next_cursor of the previous page (valid for 8 hours)."),
        ]
        | None
    ) = None
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)

    @field_validator("status")
    @classmethod
    def _queued_status(cls, status: Status) -> Status:
        if status not in QUEUE_STATUSES:
            listed = ", ".join(sorted(s.value for s in QUEUE_STATUSES))
            raise ValueError(f"the queue lists submitted candidatures only: use one of {listed}")
        return status

    @field_validator("department")
    @classmethod
    def _known_department(cls, department: str | None) -> str | None:
        if department is not None and department not in geography.DEPARTMENTS:
            raise ValueError("use a department code: 01 to 95, 2A, 2B or 971 to 976")
        return department


def _review_role(caller: Caller) -> Role:
    return Role.ADMIN if caller.has(Role.ADMIN) else Role.REVIEWER


def _in_scope(store: CandidatureRepository, caller: Caller, candidature_id: str) -> Candidature:
    """A candidature of the reviewer's departments; anything else is indistinguishable from missing."""
    caller.require(Role.REVIEWER, Role.ADMIN)
    candidature = store.get(candidature_id)
    if not caller.covers_department(candidature.department):
        raise NotFound("No candidature with this id.")
    return candidature


def _readable(store: CandidatureRepository, caller: Caller, candidature_id: str) -> Candidature:
    """Its owner or an in-scope reviewer may read a candidature; others get 404."""
    caller.require(Role.PSYCHOLOGIST, Role.REVIEWER, Role.ADMIN)
    candidature = store.get(candidature_id)
    if caller.has(Role.PSYCHOLOGIST) and candidature.owner_sub == caller.sub:
        return candidature
    if caller.covers_department(candidature.department):
        return candidature
    raise NotFound("No candidature with this id.")


def read_candidature(store: CandidatureRepository, caller: Caller, candidature_id: str) -> dict[str, Any]:
    """The candidature as every read returns it; a reviewer also gets the actions open to them."""
    candidature = _readable(store, caller, candidature_id)
    body = candidature.public()
    if caller.covers_department(candidature.department):
        body["allowed_actions"] = allowed_actions(candidature.status, caller.roles & REVIEW_ROLES)
    return body


def _stale(latest: Candidature, caller: Caller, expected_version: int) -> StaleDecision:
    return StaleDecision(
        f"The candidature changed since version {expected_version}: it is now at version {latest.version} "
        f"({latest.status.value}). Read it again before deciding.",
        details=[
            {
                "expected_version": expected_version,
                "current_version": latest.version,
                "status": latest.status.value,
                "allowed_actions": allowed_actions(latest.status, caller.roles & REVIEW_ROLES),
            }
        ],
    )


def transition_candidature(
    store: CandidatureRepository,
    publisher: DecisionEvents,
    caller: Caller,
    candidature_id: str,
    request: TransitionRequest,
) -> Candidature:
    """One reviewer action: a single conditional transaction (candidature at the expected version,
    audit event, and on accept/deconvention the convention and directory items), then the event."""
    current = _in_scope(store, caller, candidature_id)
    if current.version != request.expected_version:
        raise _stale(current, caller, request.expected_version)
    target = plan_transition(current.status, request.action, caller.roles & REVIEW_ROLES, request.reason)
    reason = request.reason or None
    today = programme_today()
    if request.action is Action.DECONVENTION:
        updated = dated_end(current, request.effective_date or today, today, reason)
    else:
        changes = {"status": target, "version": current.version + 1, "updated_at": now_iso(), "status_reason": reason}
        if target is Status.ACCEPTED:
            changes |= {"convention_start": today, "convention_end": None}
        updated = current.model_copy(update=changes)
    audit = audit_event(updated, caller, _review_role(caller), request.action.value, previous=current, reason=reason)
    if request.action is Action.DECONVENTION:
        audit = audit.model_copy(update={"effective_date": updated.convention_end})
    try:
        store.save(updated, previous=current, audit=audit, effects=decision_effects(current, updated))
    except VersionMismatch as error:
        # Another reviewer's transaction won between our read and our write.
        raise _stale(store.get(candidature_id), caller, request.expected_version) from error
    if request.action in DECISIONS:
        publisher.publish(DecisionEvent.of(updated, request.action.value))
    return updated


def candidature_history(store: CandidatureRepository, caller: Caller, candidature_id: str) -> list[AuditEvent]:
    _in_scope(store, caller, candidature_id)
    return store.history(candidature_id)


def review_queue(queue: ReviewQueue, caller: Caller, query: QueueQuery) -> QueuePage:
    """Candidatures of `query.status` in the caller's departments (or the one asked), oldest first."""
    caller.require(Role.REVIEWER, Role.ADMIN)
    national = caller.has(Role.ADMIN) or ALL_DEPARTMENTS in caller.departments
    if query.department is not None:
        if not caller.covers_department(query.department):
            raise OutOfScope(f"Department {query.department} is outside your scope.")
        departments: list[str] | None = [query.department]
    elif national:
        departments = None
    else:
        departments = sorted(d for d in caller.departments if d in geography.DEPARTMENTS)
        if not departments:
            return QueuePage(results=[])
    return queue.page(query.status, departments, query.limit, query.cursor)


def document_download(
    store: CandidatureRepository, bucket: DocumentStorage, caller: Caller, candidature_id: str, document_id: str
) -> DownloadTicket:
    """A presigned GET valid DOWNLOAD_URL_SECONDS, for the owner and in-scope reviewers; recorded in the audit trail
    (who, which document) before the URL is handed out."""
    candidature = _readable(store, caller, candidature_id)
    document = next((d for d in candidature.documents if d.document_id == document_id), None)
    if document is None:
        raise NotFound("No document with this id.")
    if document.status is not DocumentStatus.VERIFIED:
        raise DocumentNotAvailable(
            f"This document is {document.status.value}: only verified documents can be downloaded.",
            details=[{"document_id": document_id, "status": document.status.value}],
        )
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}[document.content_type.value]
    url = bucket.presign_download(
        stored_document_key(candidature.id, document.document_id),
        document.content_type.value,
        f"{document.kind.value}.{extension}",
        DOWNLOAD_URL_SECONDS,
    )
    staff = caller.covers_department(candidature.department)
    store.record_download(
        AuditEvent(
            candidature_id=candidature.id,
            version=candidature.version,
            actor=caller.sub,
            role=(_review_role(caller) if staff else Role.PSYCHOLOGIST).value,
            action="download_document",
            to_status=candidature.status,
            reason=f"{document.kind.value} {document.document_id}",
            at=now_iso(),
        ),
        document.document_id,
    )
    return DownloadTicket(
        document_id=document.document_id,
        kind=document.kind,
        content_type=document.content_type,
        url=url,
        expires_in=DOWNLOAD_URL_SECONDS,
    )
