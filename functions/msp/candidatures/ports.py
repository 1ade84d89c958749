"""What the candidature use cases need from storage, as Protocols: the use cases depend on these, the adapters in
msp.storage implement them, and the unit tests give in-memory fakes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from msp.candidatures.convention import DecisionEffects
    from msp.candidatures.documents import UploadedObject
    from msp.candidatures.models import (
        AuditEvent,
        Candidature,
        DecisionEvent,
        Document,
        DocumentStatus,
        QueuePage,
        Status,
    )


class CandidatureRepository(Protocol):
    def get(self, candidature_id: str) -> Candidature:
        """The candidature; NotFound when there is none."""
        ...

    def save(
        self,
        candidature: Candidature,
        *,
        previous: Candidature | None,
        audit: AuditEvent | None,
        effects: DecisionEffects | None = None,
    ) -> None:
        """Write the new version (and the audit event, and a decision's effects) at once, if `previous` is still
        the stored version: VersionMismatch otherwise; IdentifierTaken, AlreadyConventioned, ConventionMismatch
        when the identifier lock or the convention refuse it."""
        ...

    def history(self, candidature_id: str) -> list[AuditEvent]: ...

    def audit_event(self, candidature_id: str, version: int) -> AuditEvent | None: ...

    def claim_notification(self, candidature_id: str, version: int) -> bool:
        """Mark a decision as being notified; False when it already was."""
        ...

    def release_notification(self, candidature_id: str, version: int) -> None: ...

    def record_document_verdict(self, candidature_id: str, document: Document) -> bool:
        """Store a pending document's verdict once; False when it was already recorded."""
        ...

    def convention(self, owner_sub: str) -> dict[str, Any] | None:
        """The psychologist's convention item (status, candidature_id, start_date, end_date), or None."""
        ...

    def owned_by(self, owner_sub: str) -> list[Candidature]:
        """Every candidature of this psychologist, newest first."""
        ...

    def previous_holder(self, identifier_type: str, value: str) -> str | None:
        """The last submitted candidature that held this identifier and let it go, if any."""
        ...

    def ending_by(self, day: str) -> list[str]:
        """Ids of accepted candidatures whose convention ends on `day` (ISO date) or earlier."""
        ...

    def record_download(self, event: AuditEvent, document_id: str) -> None:
        """Add a download to the audit trail after the event of its version, without changing the version."""
        ...


class DocumentStorage(Protocol):
    def presign_upload(self, key: str, content_type: str, max_size: int, expires_in: int) -> tuple[str, dict]: ...

    def presign_download(self, key: str, content_type: str, filename: str, expires_in: int) -> str: ...

    def inspect(self, key: str, head_length: int, tail_length: int) -> UploadedObject:
        """The first and last bytes of the object's current version, its size and that version's identity (both
        ends read from the same version); NotFound when there is no such object."""
        ...

    def copy(self, source_key: str, target_key: str, inspected: UploadedObject) -> None:
        """Copy exactly the inspected version, whatever was uploaded under the key since."""
        ...

    def delete(self, key: str) -> None: ...


class ReviewQueue(Protocol):
    def page(self, status: Status, departments: list[str] | None, limit: int, cursor: str | None) -> QueuePage:
        """`departments` None means every department."""
        ...


class DecisionEvents(Protocol):
    def publish(self, event: DecisionEvent) -> bool:
        """True when the event was taken; a failure is logged, never raised."""
        ...


class DocumentMetrics(Protocol):
    def document_checked(self, status: DocumentStatus) -> None:
        """A verdict recorded (msp.metrics.BusinessMetrics): once per document, whatever S3 redelivers."""
        ...
