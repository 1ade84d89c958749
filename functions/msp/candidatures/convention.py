"""What a decision changes beyond the candidature: the psychologist's convention and their directory listing.

Entering `accepted` starts the convention and lists every practice; leaving it ends the convention and
unlists them; a listing edit re-lists; an end decided for a later day only dates the convention's end. The
plan is decided here and written by storage in the candidature's own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from msp.candidatures.models import Candidature, CandidatureFields, Status

if TYPE_CHECKING:
    from msp.directory.listing import ListingPlan

CONVENTION_ACCEPTED = "accepted"
ConventionStatus = Literal["accepted", "deconventioned"]


@dataclass(frozen=True)
class ConventionChange:
    """The convention item to write: one per psychologist, held by the candidature that was accepted.

    `start_date` and `end_date` are ISO dates: the first day the convention covers and, once an end is
    decided, its last day (a resignation's or a deconvention's effective date)."""

    psychologist_sub: str
    status: ConventionStatus
    candidature_id: str
    department: str | None
    updated_at: str
    start_date: str | None = None
    end_date: str | None = None


@dataclass(frozen=True)
class DecisionEffects:
    convention: ConventionChange | None = None
    listing: ListingPlan | None = None


def _convention_of(candidature: Candidature) -> ConventionChange:
    return ConventionChange(
        psychologist_sub=candidature.owner_sub,
        status="accepted" if candidature.status is Status.ACCEPTED else "deconventioned",
        candidature_id=candidature.id,
        department=candidature.department,
        updated_at=candidature.updated_at,
        start_date=candidature.convention_start.isoformat() if candidature.convention_start else None,
        end_date=candidature.convention_end.isoformat() if candidature.convention_end else None,
    )


def _listed(candidature: Candidature | None) -> CandidatureFields | None:
    """What a candidature lists: its fields while accepted, nothing otherwise."""
    return candidature.fields if candidature is not None and candidature.status is Status.ACCEPTED else None


def decision_effects(previous: Candidature | None, updated: Candidature) -> DecisionEffects:
    """The convention and listing changes of a change to a candidature (from nothing, for a candidature stored
    already decided).

    Entering or leaving `accepted` starts or ends the convention and lists or unlists; an accepted
    candidature that stays accepted re-lists what changed and re-dates its convention when its end moved."""
    listed_before, listed_after = _listed(previous), _listed(updated)
    if listed_before is None and listed_after is None:
        return DecisionEffects()
    # H3 and the listing code load only where a listing changes.
    from msp.directory.listing import plan_listing

    plan = plan_listing(updated.id, listed_before, listed_after)
    if listed_before is None or listed_after is None:
        return DecisionEffects(_convention_of(updated), plan)
    moved_end = previous is None or previous.convention_end != updated.convention_end
    return DecisionEffects(_convention_of(updated) if moved_end else None, None if plan.empty else plan)
