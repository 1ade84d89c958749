"""Session use cases of a psychologist: declare a session, cancel one, look up a patient's quota."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from msp.auth import Caller, Role
from msp.clock import now_iso
from msp.errors import NotFound, StorageBusy
from msp.sessions.decisions import (
    Declaration,
    DeclarationState,
    StateChanged,
    decide_cancellation,
    decide_declaration,
    require_accepted,
)

# The session rules (their models and the policy) load in the functions that apply them: the cancelling
# route needs none of them, and the other two routes' handlers import them anyway.
if TYPE_CHECKING:
    from msp.sessions.rules import (
        DeclaredSession,
        PatientKeyring,
        QuotaQuery,
        QuotaStatus,
        SessionDeclaration,
        SessionRecord,
    )

# A declaration decided again this many times, each time on the state a refused transaction showed, gives up.
DECLARATION_ATTEMPTS = 16


class SessionRepository(Protocol):
    """What the session use cases need from storage (msp.storage.sessions.SessionStore)."""

    def declaration_state(
        self, psychologist_sub: str, patient_key: str, year: int, session_id: str | None = None
    ) -> DeclarationState: ...

    def record_declaration(self, declaration: Declaration, state: DeclarationState) -> None:
        """Write the decision; StateChanged when the state moved since it was read."""
        ...

    def stored_session(self, session_id: str) -> dict[str, Any] | None: ...

    def record_cancellation(
        self, session_id: str, psychologist_sub: str, patient_key: str, year: int, now: str
    ) -> None: ...


def record_session(store: SessionRepository, session: SessionRecord) -> DeclaredSession:
    """Count the session against the patient's year and store it, exactly once for its id.

    One consistent read, then one transaction. When another declaration, a cancellation or a decision moved the
    state in between, the refusal carries the state as it now is, and the decision is taken again on it
    without reading again.
    """
    state = store.declaration_state(session.psychologist_sub, session.patient_key, session.year, session.session_id)
    for _ in range(DECLARATION_ATTEMPTS):
        decision = decide_declaration(state, session)
        if not isinstance(decision, Declaration):
            return decision
        try:
            store.record_declaration(decision, state)
        except StateChanged as changed:
            state = changed.state
            continue
        return decision.answer()
    raise StorageBusy("The service is busy; retry in a moment.")


def sessions_used(store: SessionRepository, psychologist_sub: str, patient_key: str, year: int) -> int:
    """The patient's count for the year, for a psychologist with an accepted convention."""
    state = store.declaration_state(psychologist_sub, patient_key, year)
    require_accepted(state.convention)
    return state.used


def cancel_recorded(store: SessionRepository, session_id: str, psychologist_sub: str, current_year: int) -> None:
    """Cancel a session of the current year declared by this psychologist, and count it back, atomically."""
    patient_key, year = decide_cancellation(store.stored_session(session_id), psychologist_sub, current_year)
    store.record_cancellation(session_id, psychologist_sub, patient_key, year, now_iso())


def declare_session(
    store: SessionRepository,
    keyring: PatientKeyring,
    caller: Caller,
    declaration: SessionDeclaration,
    today: dt.date,
    session_id: str | None = None,
) -> DeclaredSession:
    """Check the declaration, count it against the patient's year and store it: 201, 403, 409 or 422.

    `session_id` (see sessions.session_id_for) makes the declaration exactly-once: the stored session is its
    idempotency record. Sent again under the same id, the answer is the one recorded with the session (not
    recounted: the ordinal, quota and amounts of the first time); another body under that id is a 422.
    """
    from msp.sessions.rules import SessionRecord, check_declaration

    caller.require(Role.PSYCHOLOGIST)
    checked = check_declaration(declaration, today)
    patient = keyring.patient_key(declaration.patient.nir, checked.year)
    session = SessionRecord(
        session_id=session_id or str(uuid.uuid4()),
        patient_key=patient,
        psychologist_sub=caller.sub,
        date=declaration.date,
        year=checked.year,
        first_session=declaration.first_session,
        tiers_payant_reason=declaration.tiers_payant_reason,
        amounts=checked.amounts,
        quota=checked.rule.sessions_per_year,
        rule_valid_from=checked.rule.valid_from,
        created_at=now_iso(),
        request_digest=keyring.declaration_digest(declaration, patient, checked.year),
    )
    return record_session(store, session)


def cancel_session(store: SessionRepository, caller: Caller, session_id: str, today: dt.date) -> None:
    """The declaring psychologist withdraws a session of the current year; it no longer counts."""
    caller.require(Role.PSYCHOLOGIST)
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise NotFound("No session with this id.") from None
    cancel_recorded(store, session_id, caller.sub, today.year)


def patient_quota(
    store: SessionRepository, keyring: PatientKeyring, caller: Caller, query: QuotaQuery, today: dt.date
) -> QuotaStatus:
    """Sessions used and left for a patient in a year, so a psychologist can check before a session."""
    from msp.sessions.rules import QuotaStatus, check_quota_query

    caller.require(Role.PSYCHOLOGIST)
    year, rule = check_quota_query(query, today)
    used = sessions_used(store, caller.sub, keyring.patient_key(query.nir, year), year)
    return QuotaStatus(year=year, used=used, quota=rule.sessions_per_year)
