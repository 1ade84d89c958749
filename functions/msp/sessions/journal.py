"""The access journal: every quota look-up, declaration and cancellation, who made it, for which patient (their
key, never the NIR), and how it ended; and the daily limit on distinct patients a psychologist looks up."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from msp.auth import Caller, Role
from msp.clock import PROGRAMME_TIMEZONE
from msp.errors import DomainError, InvalidFields, LookupLimitReached

if TYPE_CHECKING:
    from msp.sessions.rules import SessionRequest

Action = Literal["lookup", "declare", "cancel"]
ACCEPTED = "accepted"
REPLAYED = "replayed"  # the same declaration sent again under its Idempotency-Key
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def refused(error: DomainError) -> str:
    """`refused:<reason>`, the reason named after the domain error (QuotaExhausted: quota_exhausted)."""
    return "refused:" + _WORD_START.sub("_", type(error).__name__).lower()


@dataclass(frozen=True)
class JournalEntry:
    psychologist_sub: str
    action: Action
    at: str  # ISO 8601, UTC
    patient_key: str | None = None
    session_id: str | None = None
    outcome: str = ACCEPTED
    entry_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def ending(self, outcome: str) -> JournalEntry:
        return replace(self, outcome=outcome)

    @classmethod
    def declaring(cls, session: SessionRequest) -> JournalEntry:
        """The entry of a session's declaration, at the time the session was checked."""
        return cls(
            session.psychologist_sub,
            "declare",
            session.created_at,
            patient_key=session.patient_key,
            session_id=session.session_id,
        )


def lookup_limit_reached(limit: int, now: dt.datetime) -> LookupLimitReached:
    """The refusal of one more distinct patient today; retry once the day is over in Paris."""
    local = now.astimezone(PROGRAMME_TIMEZONE)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), PROGRAMME_TIMEZONE)
    seconds = max(int((midnight - local).total_seconds()) + 1, 1)
    return LookupLimitReached(
        f"You looked up {limit} different patients today, the most a day allows; retry tomorrow.",
        retry_after_seconds=seconds,
        details=[{"limit": limit, "day": local.date().isoformat()}],
    )


# --- what an admin reads


class JournalQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, StringConstraints(max_length=2000)] | None = None


class JournalView(BaseModel):
    """One entry as an admin sees it: the patient only as their key."""

    at: str
    action: Action
    outcome: str
    patient_key: str | None = None
    session_id: str | None = None


class JournalPage(BaseModel):
    psychologist_sub: str
    entries: list[JournalView]
    next_cursor: str | None


class JournalReader(Protocol):
    def entries(
        self, psychologist_sub: str, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]: ...


PSYCHOLOGIST_SUB = re.compile(r"^[A-Za-z0-9@._:+-]{1,128}$")


def journal_of(reader: JournalReader, caller: Caller, psychologist_sub: str, query: JournalQuery) -> JournalPage:
    """A psychologist's access journal, newest first (admins only)."""
    caller.require(Role.ADMIN)
    if not PSYCHOLOGIST_SUB.match(psychologist_sub):
        raise InvalidFields(
            "The psychologist is not a valid account id.",
            details=[{"field": "psychologist_sub", "message": "1 to 128 letters, digits or @._:+-"}],
        )
    items, next_cursor = reader.entries(psychologist_sub, query.limit, query.cursor)
    fields = JournalView.model_fields
    entries = [JournalView.model_validate({name: item.get(name) for name in fields}) for item in items]
    return JournalPage(psychologist_sub=psychologist_sub, entries=entries, next_cursor=next_cursor)
