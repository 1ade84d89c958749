"""Conventions that began before this service: an admin records them as accepted, listed candidatures.

The programme has run since 2022; its conventioned psychologists get here with the day their convention
started, so the sessions they held since can be declared (within the declaration window) like anyone's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints

from msp.auth import Caller, Role
from msp.candidatures.convention import decision_effects
from msp.candidatures.models import SUBMISSION_FIELDS, AuditEvent, Candidature, CandidatureFields, Status
from msp.candidatures.ports import CandidatureRepository
from msp.clock import now_iso
from msp.documented import Documented, never_null
from msp.errors import InvalidFields

PROGRAMME_START = dt.date(2022, 4, 5)
IMPORTED = "imported"


def _complete(schema: dict[str, Any]) -> None:
    """What check_import asks for, in the schema: every field a submission needs, not null."""
    for name in SUBMISSION_FIELDS:
        never_null(schema["properties"][name])
    schema["required"] = [*SUBMISSION_FIELDS, *schema.get("required", [])]


class ConventionImport(CandidatureFields):
    """The body of POST /v1/admin/conventions: the candidature's fields, whose account it is, and the day the
    convention started."""

    model_config = ConfigDict(json_schema_extra=_complete)

    owner_sub: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9@._:+-]{1,128}$")]
    convention_start: Annotated[
        dt.date, Documented(description=f"From {PROGRAMME_START.isoformat()} (the programme's start) to today.")
    ]

    def fields(self) -> CandidatureFields:
        return CandidatureFields.model_validate(self.model_dump(exclude={"owner_sub", "convention_start"}))


def check_import(request: ConventionImport, today: dt.date) -> CandidatureFields:
    problems = [{"field": name, "message": "required for a convention"} for name in request.missing_for_submission()]
    if not PROGRAMME_START <= request.convention_start <= today:
        message = f"a date from {PROGRAMME_START.isoformat()} to today ({today.isoformat()})"
        problems.append({"field": "convention_start", "message": message})
    if problems:
        raise InvalidFields("The convention cannot be imported as sent.", details=problems)
    return request.fields()


def import_convention(
    store: CandidatureRepository, caller: Caller, request: ConventionImport, today: dt.date
) -> Candidature:
    """An accepted candidature with its convention from `convention_start`, listed in the directory, and an
    `imported` audit event, in one transaction; 409 when another active candidature holds the identifier or
    the psychologist is already conventioned."""
    caller.require(Role.ADMIN)
    fields = check_import(request, today)
    now = now_iso()
    candidature = Candidature(
        id=str(uuid.uuid4()),
        owner_sub=request.owner_sub,
        status=Status.ACCEPTED,
        created_at=now,
        updated_at=now,
        submitted_at=now,
        fields=fields,
        convention_start=request.convention_start,
    )
    audit = AuditEvent(
        candidature_id=candidature.id,
        version=candidature.version,
        actor=caller.sub,
        role=Role.ADMIN.value,
        action=IMPORTED,
        from_status=None,
        to_status=candidature.status,
        reason=f"convention since {request.convention_start.isoformat()}",
        at=now,
    )
    store.save(candidature, previous=None, audit=audit, effects=decision_effects(None, candidature))
    return candidature
