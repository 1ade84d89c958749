"""The HTTP answer of every domain error: status, error code and headers, in this one table.

A module of its own, without Powertools, so what maps errors can be read (and tested) without the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from msp import errors
from msp.errors import DomainError


class ErrorAnswer(NamedTuple):
    status: int
    code: str
    headers: Mapping[str, str] = MappingProxyType({})


BUSY = {"Retry-After": "2"}
# Every domain error's answer, in this one place. A subclass not listed answers as its closest listed base.
ERROR_ANSWERS: dict[type[DomainError], ErrorAnswer] = {
    errors.InvalidRequest: ErrorAnswer(400, "bad_request"),
    errors.MalformedJson: ErrorAnswer(400, "malformed_json"),
    errors.IdempotencyKeyMissing: ErrorAnswer(400, "idempotency_key_required"),
    errors.IdempotencyKeyMalformed: ErrorAnswer(400, "idempotency_key_invalid"),
    errors.InvalidCursor: ErrorAnswer(400, "invalid_cursor"),
    errors.NotAuthenticated: ErrorAnswer(401, "unauthorized"),
    errors.RoleNotAllowed: ErrorAnswer(403, "forbidden"),
    errors.OutOfScope: ErrorAnswer(403, "out_of_scope"),
    errors.NotConventioned: ErrorAnswer(403, "not_conventioned"),
    errors.NotFound: ErrorAnswer(404, "not_found"),
    errors.DepartmentNotInScope: ErrorAnswer(404, "department_not_in_scope"),
    errors.NoTally: ErrorAnswer(404, "no_tally"),
    errors.CandidatureExists: ErrorAnswer(409, "conflict"),
    errors.StaleDecision: ErrorAnswer(409, "version_conflict"),
    errors.NotEditable: ErrorAnswer(409, "not_editable"),
    errors.TooManyDocuments: ErrorAnswer(409, "too_many_documents"),
    errors.DocumentNotAvailable: ErrorAnswer(409, "document_not_available"),
    errors.InvalidTransition: ErrorAnswer(409, "invalid_transition"),
    errors.IdentifierTaken: ErrorAnswer(409, "identifier_in_use"),
    errors.AlreadyConventioned: ErrorAnswer(409, "already_conventioned"),
    errors.ConventionMismatch: ErrorAnswer(409, "convention_mismatch"),
    errors.QuotaExhausted: ErrorAnswer(409, "quota_exhausted"),
    errors.YearClosed: ErrorAnswer(409, "year_closed"),
    errors.RequestInProgress: ErrorAnswer(409, "request_in_progress", {"Retry-After": "1"}),
    errors.VersionMismatch: ErrorAnswer(412, "version_mismatch"),
    errors.BodyTooLarge: ErrorAnswer(413, "payload_too_large"),
    errors.NotJson: ErrorAnswer(415, "unsupported_media_type"),
    errors.InvalidFields: ErrorAnswer(422, "validation_error"),
    errors.IncompleteCandidature: ErrorAnswer(422, "incomplete_candidature"),
    errors.IdentityLocked: ErrorAnswer(422, "identity_locked"),
    errors.IdempotencyKeyReused: ErrorAnswer(422, "idempotency_key_reused"),
    errors.SearchTooBroad: ErrorAnswer(422, "search_too_broad"),
    errors.VersionRequired: ErrorAnswer(428, "if_match_required"),
    errors.LookupLimitReached: ErrorAnswer(429, "lookup_limit_reached"),
    errors.StorageBusy: ErrorAnswer(503, "service_unavailable", BUSY),
}


def answer_for(error: DomainError) -> ErrorAnswer:
    for kind in type(error).__mro__:
        if kind in ERROR_ANSWERS:
            return ERROR_ANSWERS[kind]
    raise LookupError(f"{type(error).__name__} has no answer in ERROR_ANSWERS")
