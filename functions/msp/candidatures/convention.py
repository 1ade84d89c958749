"""What a decision changes beyond the candidature: the psychologist's convention and their directory listing.

Entering `accepted` starts the convention and lists every practice; leaving it ends the convention and
unlists them. The plan is decided here and written by storage in the candidature's own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from msp.candidatures.models import Candidature, Status

if TYPE_CHECKING:
    from msp.directory.listing import ListingPlan

CONVENTION_ACCEPTED = "accepted"
ConventionStatus = Literal["accepted", "deconventioned"]


@dataclass(frozen=True)
class ConventionChange:
    """The convention item to write: one per psychologist, held by the candidature that was accepted."""

    psychologist_sub: str
    status: ConventionStatus
    candidature_id: str
    department: str | None
    updated_at: str


@dataclass(frozen=True)
class DecisionEffects:
    convention: ConventionChange | None = None
    listing: ListingPlan | None = None


def decision_effects(previous: Candidature | None, updated: Candidature) -> DecisionEffects:
    """The convention and listing changes of a transition (from nothing, for a candidature stored already
    decided); none unless it enters or leaves `accepted`."""
    was = previous is not None and previous.status is Status.ACCEPTED
    now = updated.status is Status.ACCEPTED
    if was == now:
        return DecisionEffects()
    # H3 and the listing code load only where a listing changes.
    from msp.directory.listing import plan_listing

    convention = ConventionChange(
        psychologist_sub=updated.owner_sub,
        status="accepted" if now else "deconventioned",
        candidature_id=updated.id,
        department=updated.department,
        updated_at=updated.updated_at,
    )
    if now:
        return DecisionEffects(convention, plan_listing(updated.id, None, updated.fields))
    return DecisionEffects(convention, plan_listing(updated.id, previous.fields if previous else None, None))
