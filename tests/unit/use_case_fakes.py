"""In-memory fakes of the candidature and session ports: the same conditions the DynamoDB adapters put on their
writes (version, identifier lock, one live convention, counter under the quota), in a few dicts; and the business
events the use cases count."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from typing import Any

from msp.candidatures.convention import DecisionEffects
from msp.candidatures.documents import UploadedObject
from msp.candidatures.models import AuditEvent, Candidature, Document, DocumentStatus
from msp.errors import (
    AlreadyConventioned,
    CandidatureExists,
    ConventionMismatch,
    IdentifierTaken,
    NotConventioned,
    NotFound,
    VersionMismatch,
)
from msp.sessions.decisions import Declaration, DeclarationState, StateChanged
from msp.sessions.journal import JournalEntry


class InMemoryCandidatures:
    """CandidatureRepository, with the directory the decisions' listing plans build."""

    def __init__(self) -> None:
        self.candidatures: dict[str, Candidature] = {}
        self.audits: dict[tuple[str, int], AuditEvent] = {}
        self.identifiers: dict[tuple[str, str], str] = {}
        self.conventions: dict[str, dict[str, Any]] = {}
        self.practices: dict[tuple[str, str], str] = {}  # (partition, sort key) -> psychologist id
        self.profiles: set[str] = set()
        self.density: dict[str, int] = {}
        self.notified: set[tuple[str, int]] = set()
        self.previous_holders: dict[tuple[str, str], str] = {}
        self.downloads: list[tuple[AuditEvent, str]] = []

    def get(self, candidature_id: str) -> Candidature:
        if candidature_id not in self.candidatures:
            raise NotFound("No candidature with this id.")
        return self.candidatures[candidature_id]

    def save(
        self,
        candidature: Candidature,
        *,
        previous: Candidature | None,
        audit: AuditEvent | None,
        effects: DecisionEffects | None = None,
    ) -> None:
        stored = self.candidatures.get(candidature.id)
        if previous is None and stored is not None:
            raise CandidatureExists("This candidature already exists.")
        if previous is not None and (stored is None or stored.version != previous.version):
            raise VersionMismatch("The candidature changed since you read it.")
        held = self._held(candidature)
        if held and self.identifiers.get(held, candidature.id) != candidature.id:
            raise IdentifierTaken("An active candidature already uses this number.")
        self._check_convention(effects)
        released = self._held(previous) if previous else None
        if released and released != held:
            del self.identifiers[released]
            if held is None and candidature.submitted_at and not candidature.purged_at:
                self.previous_holders[released] = candidature.id
        if held:
            self.identifiers[held] = candidature.id
        self.candidatures[candidature.id] = candidature
        if audit is not None:
            self.audits[(audit.candidature_id, audit.version)] = audit
        if effects is not None:
            self._apply(effects)

    @staticmethod
    def _held(candidature: Candidature | None) -> tuple[str, str] | None:
        if candidature is None or not candidature.holds_identifier or candidature.fields.identifier is None:
            return None
        return candidature.fields.identifier.type, candidature.fields.identifier.value

    def _check_convention(self, effects: DecisionEffects | None) -> None:
        change = effects.convention if effects else None
        if change is None:
            return
        current = self.conventions.get(change.psychologist_sub)
        holder = current["candidature_id"] if current else None
        if (
            change.status == "accepted"
            and current
            and current["status"] == "accepted"
            and holder != change.candidature_id
        ):
            raise AlreadyConventioned("This psychologist already holds a convention from another candidature.")
        if change.status != "accepted" and holder != change.candidature_id:
            raise ConventionMismatch("The psychologist's convention is not held by this candidature.")

    def _apply(self, effects: DecisionEffects) -> None:
        if effects.convention is not None:
            change = effects.convention
            self.conventions[change.psychologist_sub] = {
                "status": change.status,
                "candidature_id": change.candidature_id,
                "department": change.department,
                "start_date": change.start_date,
                "end_date": change.end_date,
                "updated_at": change.updated_at,
            }
        plan = effects.listing
        if plan is None:
            return
        for practice in plan.delete:
            self.practices.pop((practice.partition, practice.sort_key), None)
        for practice in plan.put:
            self.practices[(practice.partition, practice.sort_key)] = practice.psychologist_id
        if plan.profile is not None:
            self.profiles.add(plan.psychologist_id)
        if plan.delete_profile:
            self.profiles.discard(plan.psychologist_id)
        for cells in plan.density.values():
            for cell, change in cells.items():
                self.density[cell] = self.density.get(cell, 0) + change

    def convention(self, owner_sub: str) -> dict[str, Any] | None:
        return self.conventions.get(owner_sub)

    def owned_by(self, owner_sub: str) -> list[Candidature]:
        mine = [c for c in self.candidatures.values() if c.owner_sub == owner_sub]
        return sorted(mine, key=lambda c: (c.created_at, c.id), reverse=True)

    def previous_holder(self, identifier_type: str, value: str) -> str | None:
        return self.previous_holders.get((identifier_type, value))

    def ending_by(self, day: str) -> list[str]:
        return [
            c.id
            for c in self.candidatures.values()
            if c.status.value == "accepted" and c.convention_end and c.convention_end.isoformat() <= day
        ]

    def history(self, candidature_id: str) -> list[AuditEvent]:
        return [event for (cid, _), event in sorted(self.audits.items()) if cid == candidature_id]

    def audit_event(self, candidature_id: str, version: int) -> AuditEvent | None:
        return self.audits.get((candidature_id, version))

    def record_download(self, event: AuditEvent, document_id: str) -> None:
        self.downloads.append((event, document_id))

    def claim_notification(self, candidature_id: str, version: int) -> bool:
        if (candidature_id, version) in self.notified:
            return False
        self.notified.add((candidature_id, version))
        return True

    def release_notification(self, candidature_id: str, version: int) -> None:
        self.notified.discard((candidature_id, version))

    def record_document_verdict(self, candidature_id: str, document: Document) -> bool:
        current = self.get(candidature_id)
        documents = list(current.documents)
        index = next(i for i, d in enumerate(documents) if d.document_id == document.document_id)
        if documents[index].status is not DocumentStatus.PENDING:
            return False
        documents[index] = document
        self.candidatures[candidature_id] = current.model_copy(
            update={"documents": documents, "version": current.version + 1}
        )
        return True


class InMemoryDocuments:
    """DocumentStorage on a versioned bucket: `objects` holds each key's current version, `versions` every version
    by id; `after_inspect` runs after an inspection, as an upload racing the check would land before the copy."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.versions: dict[str, bytes] = {}
        self.current: dict[str, str] = {}
        self.after_inspect: list = []

    def put(self, key: str, body: bytes) -> str:
        version = f"v{len(self.versions) + 1}"
        self.versions[version] = body
        self.objects[key] = body
        self.current[key] = version
        return version

    def presign_upload(self, key: str, content_type: str, max_size: int, expires_in: int) -> tuple[str, dict]:
        return f"memory://upload/{key}", {"key": key, "Content-Type": content_type, "max": str(max_size)}

    def presign_download(self, key: str, content_type: str, filename: str, expires_in: int) -> str:
        return f"memory://download/{key}?filename={filename}&expires={expires_in}"

    def inspect(self, key: str, head_length: int, tail_length: int) -> UploadedObject:
        if key not in self.objects:
            raise NotFound("No such object.")
        body = self.objects[key]
        version = self.current[key]
        for landing in self.after_inspect:
            landing()
        return UploadedObject(body[:head_length], body[-tail_length:], len(body), f'"{version}"', version)

    def copy(self, source_key: str, target_key: str, inspected: UploadedObject) -> None:
        assert inspected.version is not None
        self.put(target_key, self.versions[inspected.version])

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class InMemorySessions:
    """SessionRepository: conventions, counters and sessions; `interleave` runs before a write, as a racing
    request would land between the read and the transaction."""

    def __init__(self) -> None:
        self.conventions: dict[str, dict[str, Any]] = {}
        self.counters: dict[tuple[str, int], int] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.writes = 0
        self.interleave: list = []
        # Entries written inside a declaration's or cancellation's transaction.
        self.journal: list[JournalEntry] = []

    def declaration_state(
        self, psychologist_sub: str, patient_key: str, year: int, session_id: str | None = None
    ) -> DeclarationState:
        self.reads += 1
        stored = self.sessions.get(session_id) if session_id else None
        return DeclarationState(
            convention=self.conventions.get(psychologist_sub),
            used=self.counters.get((patient_key, year), 0),
            stored_session=dict(stored) if stored else None,
        )

    def record_declaration(self, declaration: Declaration, state: DeclarationState) -> None:
        while self.interleave:
            self.interleave.pop(0)()
        self.writes += 1
        session = declaration.session
        convention = self.conventions.get(session.psychologist_sub)
        used = self.counters.get((session.patient_key, session.year), 0)
        stored = self.sessions.get(session.session_id)
        accepted = convention is not None and convention.get("status") == "accepted"
        same_department = accepted and convention.get("department") == declaration.department
        if stored is not None or not same_department or used != declaration.seen or used >= session.quota:
            raise StateChanged(replace(state, convention=convention, used=used, stored_session=stored))
        self.counters[(session.patient_key, session.year)] = used + 1
        self.sessions[session.session_id] = {
            "session_id": session.session_id,
            "psychologist_sub": session.psychologist_sub,
            "patient_key": session.patient_key,
            "date": session.date.isoformat(),
            "year": session.year,
            "situation": session.situation,
            "kind": session.kind,
            "request_digest": session.request_digest,
            "quota": session.quota,
            "ordinal": declaration.ordinal,
            **{
                name: str(getattr(session.amounts, name))
                for name in ("price", "amo", "amc", "state", "patient_advance")
            },
        }
        self.journal.append(declaration.journal)

    def stored_session(self, session_id: str) -> dict[str, Any] | None:
        return self.sessions.get(session_id)

    def record_cancellation(self, journal: JournalEntry, year: int) -> None:
        convention = self.conventions.get(journal.psychologist_sub)
        if convention is None or convention.get("status") != "accepted":
            raise NotConventioned("not conventioned")
        assert journal.session_id is not None and journal.patient_key is not None
        self.sessions[journal.session_id]["cancelled_at"] = journal.at
        self.counters[(journal.patient_key, year)] -= 1
        self.journal.append(journal)


class InMemoryJournal:
    """AccessJournal: the entries written beside a refusal or a look-up, and each day's patients looked up."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self.looked_up: dict[tuple[str, dt.date], set[str]] = {}

    def record(self, entry: JournalEntry) -> None:
        self.entries.append(entry)

    def record_lookup(self, entry: JournalEntry, day: dt.date, limit: int) -> bool:
        patients = self.looked_up.setdefault((entry.psychologist_sub, day), set())
        if len(patients) >= limit and entry.patient_key not in patients:
            return False
        patients.add(entry.patient_key or "")
        self.entries.append(entry)
        return True


class RecordedMetrics:
    """DocumentMetrics, DeclarationMetrics and TallyMetrics (msp.metrics.BusinessMetrics): each event counted, in
    order, with its arguments; safe to share between racing threads."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def _count(self, *event: Any) -> None:
        with self._lock:
            self.events.append(event)

    def document_checked(self, status: DocumentStatus) -> None:
        self._count("document_checked", status)

    def session_declared(self, kind: str, situation: str | None) -> None:
        self._count("session_declared", kind, situation)

    def quota_refused(self) -> None:
        self._count("quota_refused")

    def tally_finished(self, drifts_found: int, drifts_repaired: int | None) -> None:
        self._count("tally_finished", drifts_found, drifts_repaired)
