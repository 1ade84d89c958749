"""What a declaration or a cancellation does, decided on the state storage read: pure, no storage.

A declaration reads one consistent state (the psychologist's convention, the patient's count for the year, the
session already stored under its id if any), decides here, and storage writes the decision in one transaction
whose conditions restate what was read. When another request moved that state in between, storage reports the
state it found instead (StateChanged) and the decision is taken again on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from msp.errors import IdempotencyKeyReused, NotConventioned, NotFound, SessionNotCancellable

# The rules (their models and the policy) load where a declaration is decided: cancelling needs none of them.
if TYPE_CHECKING:
    from msp.sessions.rules import DeclaredSession, SessionRecord

CONVENTION_ACCEPTED = "accepted"
AMOUNT_FIELDS = ("price", "amo", "amc", "patient_advance")


@dataclass(frozen=True)
class DeclarationState:
    """What a declaration depends on, as storage read it."""

    convention: dict[str, Any] | None
    used: int
    stored_session: dict[str, Any] | None = None


@dataclass(frozen=True)
class Declaration:
    """The decision to count a session: the counter goes from `seen` to `seen + 1`, the session is stored with
    that ordinal and the department of the psychologist's convention."""

    session: SessionRecord
    department: str | None
    seen: int

    @property
    def ordinal(self) -> int:
        return self.seen + 1

    def answer(self) -> DeclaredSession:
        from msp.sessions.rules import DeclaredSession

        return DeclaredSession(
            session_id=self.session.session_id,
            year=self.session.year,
            used=self.ordinal,
            quota=self.session.quota,
            amounts=self.session.amounts,
        )


class StateChanged(Exception):
    """The transaction was refused because the state moved since it was read; `state` is what it holds now."""

    def __init__(self, state: DeclarationState):
        super().__init__("the declaration's state changed since it was read")
        self.state = state


def not_conventioned() -> NotConventioned:
    return NotConventioned(
        "Only a psychologist whose candidature is accepted (conventionné) can declare, cancel or look up sessions."
    )


def require_accepted(convention: dict[str, Any] | None) -> dict[str, Any]:
    if convention is None or convention.get("status") != CONVENTION_ACCEPTED:
        raise not_conventioned()
    return convention


def _same_request(stored: dict[str, Any], session: SessionRecord) -> bool:
    if stored.get("psychologist_sub") != session.psychologist_sub:
        return False
    if "request_digest" in stored and session.request_digest is not None:
        return stored["request_digest"] == session.request_digest
    # A session stored without the digest: its fields are all there is to compare.
    return (
        stored.get("patient_key") == session.patient_key
        and stored.get("date") == session.date.isoformat()
        and stored.get("first_session") == session.first_session
        and stored.get("tiers_payant_reason") == session.tiers_payant_reason
    )


def recorded_answer(stored: dict[str, Any], session: SessionRecord) -> DeclaredSession:
    """The answer given when this session was declared, from the session item alone (not the counter as it is
    now, nor today's policy); another declaration under the same session id is refused."""
    from msp.sessions.policy import Amounts
    from msp.sessions.rules import DeclaredSession

    if not _same_request(stored, session) or "ordinal" not in stored:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different body: use a new key.")
    return DeclaredSession(
        session_id=stored["session_id"],
        year=int(stored["year"]),
        used=int(stored["ordinal"]),
        quota=int(stored["quota"]),
        amounts=Amounts.model_validate({name: stored[name] for name in AMOUNT_FIELDS}),
    )


def decide_declaration(state: DeclarationState, session: SessionRecord) -> DeclaredSession | Declaration:
    """A session already stored under this id answers what it answered then (the session item is the
    declaration's idempotency record); otherwise the psychologist must hold an accepted convention and the
    patient's year must have room left."""
    from msp.sessions.rules import quota_exhausted

    if state.stored_session is not None:
        return recorded_answer(state.stored_session, session)
    convention = require_accepted(state.convention)
    department = convention.get("department")
    end_date = convention.get("end_date")
    if end_date and session.date.isoformat() > end_date:
        raise NotConventioned(
            f"Your convention ends on {end_date}: sessions dated after it cannot be declared.",
            details=[{"field": "date", "message": f"give a date on or before {end_date}"}],
        )
    if state.used >= session.quota:
        raise quota_exhausted(session.year, state.used, session.quota)
    return Declaration(session=session, department=department, seen=state.used)


def decide_cancellation(stored: dict[str, Any] | None, psychologist_sub: str, current_year: int) -> tuple[str, int]:
    """Whether the declaring psychologist may cancel this session: (patient key, year) of the counter to move.

    Someone else's session, or one already cancelled, answers exactly like a missing one; only sessions of the
    current year can be cancelled."""
    if stored is None or stored.get("psychologist_sub") != psychologist_sub or "cancelled_at" in stored:
        raise NotFound("No session with this id.")
    year = int(stored["year"])
    if year != current_year:
        raise SessionNotCancellable(f"Only sessions of {current_year} can be cancelled; this one counts in {year}.")
    return stored["patient_key"], year
