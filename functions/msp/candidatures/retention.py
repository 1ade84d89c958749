"""Retention: the personal data and documents of candidatures that ended long enough ago are erased.

Drafts and withdrawn candidatures are kept 6 months after their last change, rejected ones 2 years,
deconventioned ones the legal retention (the template's parameters set all four). What stays is an anonymised
skeleton: the candidature's states and dates, and its audit trail without actors or reasons.

A purge erases in an order that makes it resumable: the documents (every S3 version), the audit trail's names
and reasons, the notification markers, the identifier's last-holder record, and last the candidature item,
replaced by its skeleton. A run stopped anywhere leaves the candidature unpurged, and the next run redoes every
step (each is idempotent) and finishes it; a purged skeleton is never selected again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Protocol

from pydantic import BaseModel, Field

from msp.candidatures.models import Candidature, CandidatureFields, Status
from msp.candidatures.ports import CandidatureRepository
from msp.candidatures.use_cases import DOCUMENT_PREFIX, UPLOAD_PREFIX, system_event
from msp.errors import NotFound, VersionMismatch

RETENTION_ACTOR = "retention"


class RetentionPolicy(BaseModel):
    """Days a candidature is kept after its last change, by status (only these statuses are ever purged)."""

    draft_days: int = Field(default=183, ge=1)
    withdrawn_days: int = Field(default=183, ge=1)
    rejected_days: int = Field(default=730, ge=1)
    deconventioned_days: int = Field(default=3650, ge=1)

    def kept_days(self, status: Status) -> int | None:
        return {
            Status.DRAFT: self.draft_days,
            Status.WITHDRAWN: self.withdrawn_days,
            Status.REJECTED: self.rejected_days,
            Status.DECONVENTIONED: self.deconventioned_days,
        }.get(status)


PURGEABLE_STATUSES = (Status.DRAFT, Status.WITHDRAWN, Status.REJECTED, Status.DECONVENTIONED)


def purge_due(candidature: Candidature, policy: RetentionPolicy, now: dt.datetime) -> bool:
    """Whether the retention period of this candidature is over (a skeleton is never due again)."""
    kept = policy.kept_days(candidature.status)
    if kept is None or candidature.purged_at:
        return False
    last_change = dt.datetime.fromisoformat(candidature.updated_at)
    if candidature.status is Status.DECONVENTIONED and candidature.convention_end:
        last_change = max(last_change, dt.datetime.combine(candidature.convention_end, dt.time(), dt.UTC))
    return now - last_change > dt.timedelta(days=kept)


def skeleton(candidature: Candidature, purged_at: str) -> Candidature:
    """What is kept of a purged candidature: its id, state and dates, nothing that names anyone."""
    return Candidature(
        id=candidature.id,
        owner_sub="",
        status=candidature.status,
        version=candidature.version + 1,
        created_at=candidature.created_at,
        updated_at=purged_at,
        submitted_at=candidature.submitted_at,
        convention_start=candidature.convention_start,
        convention_end=candidature.convention_end,
        fields=CandidatureFields(),
        purged_at=purged_at,
    )


class PurgeStore(CandidatureRepository, Protocol):
    def purge_candidates(self, start: str | None) -> Iterator[tuple[Candidature, str | None]]:
        """Unpurged candidatures in a purgeable status, each with the position to resume after it."""
        ...

    def anonymise_history(self, candidature_id: str) -> int:
        """Strip actors and reasons from its audit trail; the number of events changed."""
        ...

    def erase_markers(self, candidature: Candidature) -> int:
        """Delete its notification markers, its identifier's last-holder record and its convention item if they
        name it; the number of items deleted."""
        ...


class PurgeBucket(Protocol):
    def erase_prefix(self, prefix: str) -> int:
        """Delete every version and delete marker under the prefix; the number erased."""
        ...


class PurgeReport(BaseModel):
    purged: list[str] = []
    items_erased: int = 0
    audit_events_anonymised: int = 0
    object_versions_erased: int = 0
    complete: bool = True
    resume_from: str | None = None


def purge_one(store: PurgeStore, bucket: PurgeBucket, candidature: Candidature, now: str, report: PurgeReport) -> None:
    """Erase one candidature's personal data and documents, leaving its skeleton (see the module's order)."""
    for prefix in (DOCUMENT_PREFIX, UPLOAD_PREFIX):
        report.object_versions_erased += bucket.erase_prefix(f"{prefix}{candidature.id}/")
    report.audit_events_anonymised += store.anonymise_history(candidature.id)
    report.items_erased += store.erase_markers(candidature)
    kept = skeleton(candidature, now)
    store.save(kept, previous=candidature, audit=system_event(candidature, kept, RETENTION_ACTOR, "purge"))
    report.purged.append(candidature.id)


def purge_expired(
    store: PurgeStore,
    bucket: PurgeBucket,
    policy: RetentionPolicy,
    now: dt.datetime,
    *,
    start: str | None = None,
    time_left: Callable[[], bool] = lambda: True,
) -> PurgeReport:
    """Purge every candidature past its retention, from the position `start`; stops early (incomplete, with the
    position to resume from) when `time_left()` turns false."""
    from msp.clock import iso

    report = PurgeReport()
    stamp = iso(now)
    position = start
    for candidature, after in store.purge_candidates(start):
        if not time_left():
            report.complete, report.resume_from = False, position
            return report
        if purge_due(candidature, policy, now):
            # Changed or gone meanwhile: the next run looks at it again.
            with suppress(VersionMismatch, NotFound):
                purge_one(store, bucket, candidature, stamp, report)
        position = after
    return report
