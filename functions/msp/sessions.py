"""Session declarations, the pure part: what a psychologist sends, what the session costs, whom it counts against.

The NIR is only held in memory: a SecretStr, so no repr, dump or validation error shows it, and hashed into
the patient key, which is all that is ever stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    StrictBool,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from msp import nir as nir_rules
from msp import policy
from msp.errors import Conflict, Unprocessable
from msp.policy import Amounts, Rule

MINIMUM_AGE = 3
# HMAC-SHA256 keys shorter than the 32-byte digest weaken it (RFC 2104, section 3).
MIN_SECRET_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
HIDDEN_INPUT = "[hidden]"


class _PatientData(BaseModel):
    """A model holding a NIR: its validation errors never carry the input they refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)

    @model_validator(mode="wrap")
    @classmethod
    def _hide_inputs(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        # hide_input_in_errors only cleans the error's text; errors() and json() would still hold the NIR
        # (or a dict containing it) for whoever logs them, and a chained original would bring it back.
        try:
            return handler(data)
        except ValidationError as error:
            problems = [_without_input(problem) for problem in error.errors(include_url=False, include_input=False)]
            raise ValidationError.from_exception_data(error.title, problems, hide_input=True) from None


def _without_input(problem: ErrorDetails) -> InitErrorDetails:
    details: InitErrorDetails = {"type": problem["type"], "loc": problem["loc"], "input": HIDDEN_INPUT}
    if "ctx" in problem:
        details["ctx"] = problem["ctx"]
    return details


class Patient(_PatientData):
    nir: SecretStr
    birth_date: dt.date

    @field_validator("nir", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return nir_rules.normalise(value) if isinstance(value, str) else value

    @field_validator("nir")
    @classmethod
    def _well_formed(cls, value: SecretStr) -> SecretStr:
        problem = nir_rules.nir_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value


class SessionDeclaration(_PatientData):
    """The body of POST /v1/sessions."""

    patient: Patient
    date: dt.date
    # Only needed when the policy prices the first session of the year apart (see check_declaration).
    first_session: StrictBool | None = None
    tiers_payant_reason: Annotated[str, StringConstraints(max_length=40)] | None = None


@dataclass(frozen=True)
class CheckedDeclaration:
    year: int
    rule: Rule
    amounts: Amounts


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years; someone born on 29 February has a birthday on 1 March in other years."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def check_declaration(
    declaration: SessionDeclaration, today: dt.date, rules: Sequence[Rule] | None = None
) -> CheckedDeclaration:
    """The calendar year, rule and amounts of a declaration, or one 422 listing everything to fix.

    `today` is the programme's date (Europe/Paris): a session held tonight is not in the future.
    """
    problems: list[dict[str, str]] = []
    patient, session_date = declaration.patient, declaration.date

    if session_date > today:
        problems.append({"field": "date", "message": "declare a session once it has taken place"})

    mismatch = nir_rules.birth_date_problem(patient.nir.get_secret_value(), patient.birth_date)
    if mismatch:
        problems.append({"field": "patient.birth_date", "message": mismatch})
    if patient.birth_date > session_date:
        problems.append({"field": "patient.birth_date", "message": "the birth date is after the session date"})
    elif age_on(patient.birth_date, session_date) < MINIMUM_AGE:
        message = f"the patient must be {MINIMUM_AGE} or older on the session date"
        problems.append({"field": "patient.birth_date", "message": message})

    rule, amounts = None, None
    try:
        rule = policy.rule_for(session_date, rules)
        if rule.prices_first_session_apart and declaration.first_session is None:
            problems.append(
                {
                    "field": "first_session",
                    "message": "say whether this is the patient's first session of the year: it is priced apart",
                }
            )
        amounts = policy.amounts(rule, bool(declaration.first_session), declaration.tiers_payant_reason)
    except Unprocessable as error:
        problems.extend(error.details)

    if problems or rule is None or amounts is None:
        raise Unprocessable("The session cannot be declared as sent.", details=problems)
    return CheckedDeclaration(year=session_date.year, rule=rule, amounts=amounts)


def patient_key(nir: str | SecretStr, secret: bytes, key_id: str) -> str:
    """`<key_id>:<hex HMAC-SHA256 of the normalised NIR>`: the id names the secret, so it can be rotated."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is 1 to 32 letters, digits, '-' or '_'")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the patient key secret must be at least {MIN_SECRET_BYTES} bytes")
    raw = nir.get_secret_value() if isinstance(nir, SecretStr) else nir
    normalised = nir_rules.normalise(raw)
    if nir_rules.nir_problem(normalised):
        raise ValueError("only a valid NIR can be turned into a patient key")
    digest = hmac.new(secret, normalised.encode("ascii"), hashlib.sha256).hexdigest()
    return f"{key_id}:{digest}"


class QuotaStatus(BaseModel):
    """A patient's sessions in a calendar year against the quota."""

    year: int
    used: int = Field(ge=0)
    quota: int = Field(ge=1)

    @computed_field
    @property
    def remaining(self) -> int:
        # A later rule may lower the quota below what was already used; nothing is left then, not less.
        return max(self.quota - self.used, 0)


class DeclaredSession(QuotaStatus):
    """The 201 answer to a declaration."""

    session_id: str
    amounts: Amounts


def quota_exhausted(year: int, used: int, quota: int) -> Conflict:
    return Conflict(
        f"The patient has already used the {quota} reimbursed sessions of {year}.",
        code="quota_exhausted",
        details=[{"year": year, "used": used, "quota": quota}],
    )
