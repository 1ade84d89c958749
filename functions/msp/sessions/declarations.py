"""Session use cases of a psychologist: declare a session, cancel one, look up a patient's quota; each journaled."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from msp.auth import Caller, Role
from msp.clock import iso, utc_now
from msp.errors import DomainError, NotFound, QuotaExhausted, StorageBusy
from msp.sessions.decisions import (
    Declaration,
    DeclarationState,
    StateChanged,
    decide_cancellation,
    decide_declaration,
    require_accepted,
)
from msp.sessions.journal import REPLAYED, JournalEntry, lookup_limit_reached, refused

# The session rules' models load in the functions that apply them: the cancelling route needs none of them,
# and the other two routes' handlers import them anyway.
if TYPE_CHECKING:
    from msp.sessions.policy import Kind
    from msp.sessions.rules import (
        DeclaredSession,
        PatientKeyring,
        QuotaQuery,
        QuotaStatus,
        SessionDeclaration,
        SessionRequest,
    )

# A declaration decided again this many times, each time on the state a refused transaction showed, gives up.
DECLARATION_ATTEMPTS = 16


class SessionRepository(Protocol):
    """What the session use cases need from storage (msp.storage.sessions.SessionStore)."""

    def declaration_state(
        self, psychologist_sub: str, patient_key: str, year: int, session_id: str | None = None
    ) -> DeclarationState: ...

    def record_declaration(self, declaration: Declaration, state: DeclarationState) -> None:
        """Write the decision and its journal entry; StateChanged when the state moved since it was read."""
        ...

    def stored_session(self, session_id: str) -> dict[str, Any] | None: ...

    def record_cancellation(self, journal: JournalEntry, year: int) -> None: ...


class AccessJournal(Protocol):
    """Where refusals and look-ups are journaled (msp.storage.access_journal.AccessJournalStore)."""

    def record(self, entry: JournalEntry) -> None: ...

    def record_lookup(self, entry: JournalEntry, day: dt.date, limit: int) -> bool: ...


class DeclarationMetrics(Protocol):
    """The business events of a declaration (msp.metrics.BusinessMetrics): counted once, a replay is not."""

    def session_declared(self, kind: Kind, situation: str | None) -> None: ...

    def quota_refused(self) -> None: ...


def record_session(
    store: SessionRepository, session: SessionRequest, journal: JournalEntry
) -> tuple[DeclaredSession, bool]:
    """Count the session against the patient's year and store it, exactly once for its id.

    One consistent read, then one transaction. When another declaration, a cancellation or a decision moved the
    state in between, the refusal carries the state as it now is, and the decision is taken again on it
    without reading again: the kind and price follow the count the transaction finally restates. The answer
    comes with whether this call recorded the session (False: it was recorded before, under the same id).
    """
    state = store.declaration_state(session.psychologist_sub, session.patient_key, session.year, session.session_id)
    for _ in range(DECLARATION_ATTEMPTS):
        decision = decide_declaration(state, session, journal)
        if not isinstance(decision, Declaration):
            return decision, False
        try:
            store.record_declaration(decision, state)
        except StateChanged as changed:
            state = changed.state
            continue
        return decision.answer(), True
    raise StorageBusy("The service is busy; retry in a moment.")


def _journaled(journal: AccessJournal, entry: JournalEntry, error: DomainError) -> DomainError:
    journal.record(entry.ending(refused(error)))
    return error


def declare_session(
    store: SessionRepository,
    journal: AccessJournal,
    keyring: PatientKeyring,
    metrics: DeclarationMetrics,
    caller: Caller,
    declaration: SessionDeclaration,
    today: dt.date,
    session_id: str | None = None,
) -> DeclaredSession:
    """Check the declaration, count it against the patient's year and store it: 201, 403, 409 or 422.

    `session_id` (see sessions.session_id_for) makes the declaration exactly-once: the stored session is its
    idempotency record. Sent again under the same id, the answer is the one recorded with the session (not
    recounted: the ordinal, kind, quota and amounts of the first time); another body under that id is a 422.
    Once the patient is known, every outcome is journaled. A session recorded, or refused for its exhausted quota,
    is counted in `metrics`; a replay is not.
    """
    from msp.sessions.rules import SessionRequest, check_declaration

    caller.require(Role.PSYCHOLOGIST)
    year = declaration.date.year
    patient = keyring.patient_key(declaration.patient.nir, year)
    session_id = session_id or str(uuid.uuid4())
    now = iso(utc_now())
    entry = JournalEntry(caller.sub, "declare", now, patient_key=patient, session_id=session_id)
    try:
        checked = check_declaration(declaration, today)
        session = SessionRequest(
            session_id=session_id,
            patient_key=patient,
            psychologist_sub=caller.sub,
            date=declaration.date,
            situation=checked.situation,
            referral=declaration.referral,
            rule=checked.rule,
            created_at=now,
            request_digest=keyring.declaration_digest(declaration, patient, year),
        )
        answer, recorded = record_session(store, session, entry)
    except StorageBusy:
        raise
    except DomainError as error:
        if isinstance(error, QuotaExhausted):
            metrics.quota_refused()
        raise _journaled(journal, entry, error) from None
    if recorded:
        metrics.session_declared(answer.kind, answer.situation)
    else:  # the declaration's own transaction journaled it the first time
        journal.record(entry.ending(REPLAYED))
    return answer


def cancel_session(
    store: SessionRepository, journal: AccessJournal, caller: Caller, session_id: str, today: dt.date
) -> None:
    """The declaring psychologist withdraws a session of a year still open; it no longer counts."""
    caller.require(Role.PSYCHOLOGIST)
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise NotFound("No session with this id.") from None
    stored = store.stored_session(session_id)
    entry = JournalEntry(
        caller.sub,
        "cancel",
        iso(utc_now()),
        patient_key=stored.get("patient_key") if stored else None,
        session_id=session_id,
    )
    try:
        _, year = decide_cancellation(stored, caller.sub, today)
        store.record_cancellation(entry, year)
    except StorageBusy:
        raise
    except DomainError as error:
        raise _journaled(journal, entry, error) from None


def patient_quota(
    store: SessionRepository,
    journal: AccessJournal,
    keyring: PatientKeyring,
    caller: Caller,
    query: QuotaQuery,
    today: dt.date,
) -> QuotaStatus:
    """Sessions used and left for a patient in a year, so a psychologist can check before a session; journaled,
    and refused (429) past the day's limit of distinct patients."""
    from msp.sessions.policy import year_settings
    from msp.sessions.rules import QuotaStatus, check_quota_query

    caller.require(Role.PSYCHOLOGIST)
    year, rule = check_quota_query(query, today)
    now = utc_now()
    patient = keyring.patient_key(query.nir, year)
    entry = JournalEntry(caller.sub, "lookup", iso(now), patient_key=patient)
    try:
        state = store.declaration_state(caller.sub, patient, year)
        require_accepted(state.convention)
        limit = year_settings().daily_lookup_limit
        if not journal.record_lookup(entry, today, limit):
            raise lookup_limit_reached(limit, now)
    except StorageBusy:
        raise
    except DomainError as error:
        raise _journaled(journal, entry, error) from None
    return QuotaStatus(year=year, used=state.used, quota=rule.sessions_per_year)
