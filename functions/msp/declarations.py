"""Session use cases of a psychologist: declare a session, cancel one, look up a patient's quota."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from msp.auth import Caller, Role
from msp.clock import now_iso
from msp.errors import NotFound
from msp.storage import SessionStore

# The session rules (their models and the policy) load in the functions that apply them: the cancelling
# route needs none of them, and the other two routes' handlers import them anyway.
if TYPE_CHECKING:
    from msp.sessions import DeclaredSession, PatientKeyring, QuotaQuery, QuotaStatus, SessionDeclaration


def declare_session(
    store: SessionStore,
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
    from msp.sessions import SessionRecord, check_declaration

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
    return store.record_declaration(session)


def cancel_session(store: SessionStore, caller: Caller, session_id: str, today: dt.date) -> None:
    """The declaring psychologist withdraws a session of the current year; it no longer counts."""
    caller.require(Role.PSYCHOLOGIST)
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise NotFound("No session with this id.") from None
    store.cancel(session_id, caller.sub, today.year)


def patient_quota(
    store: SessionStore, keyring: PatientKeyring, caller: Caller, query: QuotaQuery, today: dt.date
) -> QuotaStatus:
    """Sessions used and left for a patient in a year, so a psychologist can check before a session."""
    from msp.sessions import QuotaStatus, check_quota_query

    caller.require(Role.PSYCHOLOGIST)
    year, rule = check_quota_query(query, today)
    used = store.sessions_used(caller.sub, keyring.patient_key(query.nir, year), year)
    return QuotaStatus(year=year, used=used, quota=rule.sessions_per_year)
