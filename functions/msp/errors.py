"""Domain errors, named after what went wrong. None of them knows an HTTP status: `msp.http_errors.ERROR_ANSWERS`
maps each to its status, its error code and its headers, in one table.

Every error carries a message that says what to fix and, where it helps, `details` naming fields or states.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    def __init__(self, message: str, *, details: list[Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


# ---------------------------------------------------------------- the request itself


class InvalidRequest(DomainError):
    """A header or parameter that cannot be read at all (If-Match that is not a number, ...)."""


class MalformedJson(DomainError):
    """The body is not JSON."""


class BodyTooLarge(DomainError):
    pass


class NotJson(DomainError):
    """The body was sent with another content type than JSON."""


class InvalidFields(DomainError):
    """Fields, parameters or a body that break the rules; `details` names each field and what to do."""


class IdempotencyKeyMissing(DomainError):
    pass


class IdempotencyKeyMalformed(DomainError):
    pass


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with another request."""


class RequestInProgress(DomainError):
    """The first request under this Idempotency-Key is still being handled."""


class InvalidCursor(DomainError):
    """A pagination cursor that was tampered with, expired, or belongs to another listing."""


class VersionRequired(DomainError):
    """An edit sent without the version it was based on (If-Match)."""


# ---------------------------------------------------------------- who is asking


class NotAuthenticated(DomainError):
    pass


class RoleNotAllowed(DomainError):
    """The caller's role may not do this."""


class OutOfScope(DomainError):
    """A reviewer asked about a department outside their scope."""


class NotConventioned(DomainError):
    """Only a psychologist with an accepted convention may do this."""


class NotFound(DomainError):
    """No such thing, or one the caller may not know exists: both answer the same."""


class DepartmentNotInScope(NotFound):
    pass


class NoTally(NotFound):
    """No tally has completed for the year asked."""


# ---------------------------------------------------------------- candidatures


class CandidatureExists(DomainError):
    pass


class VersionMismatch(DomainError):
    """The candidature changed since the version the caller read."""


class StaleDecision(DomainError):
    """A reviewer decided on a version that is no longer the current one."""


class NotEditable(DomainError):
    pass


class IncompleteCandidature(DomainError):
    pass


class TooManyDocuments(DomainError):
    pass


class DocumentNotAvailable(DomainError):
    pass


class InvalidTransition(DomainError):
    pass


class IdentifierTaken(DomainError):
    """Another active candidature holds this RPPS/ADELI number."""


class AlreadyConventioned(DomainError):
    pass


class ConventionMismatch(DomainError):
    """The psychologist's convention is held by another candidature."""


class IdentityLocked(DomainError):
    """An accepted psychologist tried to change their identity (name, identifier, diploma) themselves:
    only a reviewer can, on request."""


# ---------------------------------------------------------------- directory


class SearchTooBroad(DomainError):
    """A search would read more listed practices than a search may before proving its page."""


# ---------------------------------------------------------------- sessions


class QuotaExhausted(DomainError):
    pass


class YearClosed(DomainError):
    """The session's year is past its closing date: its final tally has run."""


class LookupLimitReached(DomainError):
    """A psychologist looked up as many distinct patients today as a day allows."""

    # When the day ends in Paris; a day at most.
    def __init__(self, message: str, *, retry_after_seconds: int = 86_400, details: list[Any] | None = None):
        super().__init__(message, details=details)
        self.retry_after_seconds = retry_after_seconds


# ---------------------------------------------------------------- storage


class StorageBusy(DomainError):
    """Throttling or an outage outlasted the retries: the same request may succeed in a moment."""
