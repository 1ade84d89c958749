"""Leaving the programme: a psychologist resigns, or a reviewer deconventions them, from an effective date.

The effective date is the convention's last day (`end_date`): on it the psychologist leaves the directory, their
candidature becomes `deconventioned` and their identifier is free for a new candidature; sessions dated after it
are refused. An end decided for today happens at once; a later one is dated on the candidature (which stays
`accepted` and listed until then) and a daily job (`end_due_conventions`) carries it out on the day.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import StringConstraints

from msp.auth import Caller, Role
from msp.candidatures.convention import decision_effects
from msp.candidatures.listing_edits import conventioned_candidature
from msp.candidatures.models import Candidature, DecisionEvent, Status, Strict
from msp.candidatures.ports import CandidatureRepository, DecisionEvents
from msp.candidatures.use_cases import audit_event, system_event
from msp.clock import now_iso
from msp.documented import Documented
from msp.errors import InvalidFields, NotFound, VersionMismatch

SCHEDULER = "scheduler"


class ResignationRequest(Strict):
    effective_date: Annotated[dt.date, Documented(description="The convention's last day: today or later.")]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


def dated_end(current: Candidature, effective: dt.date, today: dt.date, reason: str | None) -> Candidature:
    """The accepted candidature once its end is decided: ended now when effective today, dated otherwise."""
    if effective < today:
        raise InvalidFields(
            "The effective date cannot be in the past.",
            details=[{"field": "effective_date", "message": f"give {today.isoformat()} or a later date"}],
        )
    changes: dict = {
        "version": current.version + 1,
        "updated_at": now_iso(),
        "status_reason": reason,
        "convention_end": effective,
    }
    if effective == today:
        changes["status"] = Status.DECONVENTIONED
    return current.model_copy(update=changes)


def resign(
    store: CandidatureRepository,
    publisher: DecisionEvents,
    caller: Caller,
    request: ResignationRequest,
    today: dt.date,
) -> Candidature:
    """End one's own convention on `effective_date`. Sending the same resignation again changes nothing."""
    current = conventioned_candidature(store, caller)
    reason = request.reason or None
    if current.convention_end == request.effective_date and current.status_reason == reason:
        return current
    updated = dated_end(current, request.effective_date, today, reason)
    audit = audit_event(updated, caller, Role.PSYCHOLOGIST, "resign", previous=current, reason=reason)
    audit = audit.model_copy(update={"effective_date": request.effective_date})
    store.save(updated, previous=current, audit=audit, effects=decision_effects(current, updated))
    publisher.publish(DecisionEvent.of(updated, "resign"))
    return updated


def end_due_conventions(store: CandidatureRepository, today: dt.date) -> list[str]:
    """Carry out every end of convention due by today; the ids ended. Safe to run again: an ended candidature
    leaves the index it is found by, and one edited meanwhile is read again."""
    ended = []
    for candidature_id in store.ending_by(today.isoformat()):
        for _attempt in range(3):
            try:
                current = store.get(candidature_id)
            except NotFound:
                break
            due = current.status is Status.ACCEPTED and current.convention_end and current.convention_end <= today
            if not due:
                break
            updated = current.model_copy(
                update={"status": Status.DECONVENTIONED, "version": current.version + 1, "updated_at": now_iso()}
            )
            audit = system_event(current, updated, SCHEDULER, "convention_end").model_copy(
                update={"effective_date": current.convention_end}
            )
            try:
                store.save(updated, previous=current, audit=audit, effects=decision_effects(current, updated))
            except VersionMismatch:
                continue  # the psychologist edited their listing meanwhile: read it again
            ended.append(candidature_id)
            break
    return ended
