"""What a declaration or a cancellation does, decided on the state storage read: pure, no storage.

A declaration reads one consistent state (the psychologist's convention, the patient's count for the year, the
session already stored under its id if any), decides here, and storage writes the decision in one transaction
whose conditions restate what was read. When another request moved that state in between, storage reports the
state it found instead (StateChanged) and the decision is taken again on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from msp.errors import IdempotencyKeyReused, InvalidFields, NotConventioned, NotFound, YearClosed

# The rules' models load where a declaration is decided; cancelling needs only the policy's closing dates.
if TYPE_CHECKING:
    from msp.sessions.journal import JournalEntry
    from msp.sessions.policy import YearSettings
    from msp.sessions.rules import DeclaredSession, SessionRecord, SessionRequest

CONVENTION_ACCEPTED = "accepted"
AMOUNT_FIELDS = ("price", "amo", "amc", "state", "patient_advance")


@dataclass(frozen=True)
class DeclarationState:
    """What a declaration depends on, as storage read it."""

    convention: dict[str, Any] | None
    used: int
    stored_session: dict[str, Any] | None = None


@dataclass(frozen=True)
class Declaration:
    """The decision to count a session: the counter goes from `seen` to `seen + 1`, the session is stored as
    the patient's `seen + 1`-th of the year (its kind and price follow) with the department of the
    psychologist's convention, and the access journal records it."""

    session: SessionRecord
    department: str | None
    seen: int
    journal: JournalEntry

    @property
    def ordinal(self) -> int:
        return self.session.ordinal

    def answer(self) -> DeclaredSession:
        from msp.sessions.rules import DeclaredSession

        return DeclaredSession(
            session_id=self.session.session_id,
            year=self.session.year,
            used=self.ordinal,
            quota=self.session.quota,
            kind=self.session.kind,
            ordinal=self.ordinal,
            situation=self.session.situation,
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


def require_within_convention(convention: dict[str, Any], session_date: dt.date) -> None:
    """A session counts only if held while the psychologist was conventioned: from the convention's start
    (the day the candidature was accepted, or the imported start) to its end when one is set."""
    start, end = convention.get("start_date"), convention.get("end_date")
    if start and session_date < dt.date.fromisoformat(start):
        message = f"the session is before your convention started on {start}"
    elif end and session_date > dt.date.fromisoformat(end):
        message = f"the session is after your convention ended on {end}"
    else:
        return
    raise InvalidFields("The session is outside your convention.", details=[{"field": "date", "message": message}])


def year_closed(year: int, today: dt.date, years: YearSettings | None = None) -> YearClosed | None:
    """The refusal of a declaration or cancellation counting in `year`, once its closing date has passed."""
    from msp.sessions import policy

    closing = (years or policy.year_settings()).closing_date(year)
    if today <= closing:
        return None
    return YearClosed(
        f"Sessions of {year} could be declared or cancelled until {closing.isoformat()}; that year is closed.",
        details=[{"year": year, "closing_date": closing.isoformat()}],
    )


def _same_request(stored: dict[str, Any], session: SessionRequest) -> bool:
    if stored.get("psychologist_sub") != session.psychologist_sub:
        return False
    if "request_digest" in stored and session.request_digest is not None:
        return stored["request_digest"] == session.request_digest
    # A session stored without the digest: its fields are all there is to compare.
    return (
        stored.get("patient_key") == session.patient_key
        and stored.get("date") == session.date.isoformat()
        and stored.get("situation") == session.situation.code
    )


def recorded_answer(stored: dict[str, Any], session: SessionRequest) -> DeclaredSession:
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
        kind=stored["kind"],
        ordinal=int(stored["ordinal"]),
        situation=stored.get("situation"),
        amounts=Amounts.model_validate({name: stored.get(name, 0) for name in AMOUNT_FIELDS}),
    )


def decide_declaration(
    state: DeclarationState, session: SessionRequest, journal: JournalEntry
) -> DeclaredSession | Declaration:
    """A session already stored under this id answers what it answered then (the session item is the
    declaration's idempotency record); otherwise the psychologist must hold an accepted convention covering
    the session's date and the patient's year must have room left. The session is the patient's next of the
    year: its kind and price follow from the count read, which the transaction then restates."""
    from msp.sessions.rules import quota_exhausted

    if state.stored_session is not None:
        return recorded_answer(state.stored_session, session)
    convention = require_accepted(state.convention)
    require_within_convention(convention, session.date)
    if state.used >= session.quota:
        raise quota_exhausted(session.year, state.used, session.quota)
    return Declaration(
        session=session.priced(state.used + 1),
        department=convention.get("department"),
        seen=state.used,
        journal=journal,
    )


def decide_cancellation(stored: dict[str, Any] | None, psychologist_sub: str, today: dt.date) -> tuple[str, int]:
    """Whether the declaring psychologist may cancel this session: (patient key, year) of the counter to move.

    Someone else's session, or one already cancelled, answers exactly like a missing one; a session of a
    closed year can no longer be cancelled (its final tally has run)."""
    if stored is None or stored.get("psychologist_sub") != psychologist_sub or "cancelled_at" in stored:
        raise NotFound("No session with this id.")
    year = int(stored["year"])
    closed = year_closed(year, today)
    if closed:
        raise closed
    return stored["patient_key"], year
