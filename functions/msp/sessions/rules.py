"""Session declarations, the pure part: what a psychologist sends, what the session costs, whom it counts against.

The NIR is only held in memory: a SecretStr, so no repr, dump or validation error shows it, and hashed into
the patient key, which is all that is ever stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from msp.documented import Documented
from msp.errors import InvalidFields, QuotaExhausted
from msp.identifiers import RPPS_PATTERN, rpps_problem
from msp.sessions import nir as nir_rules
from msp.sessions import policy
from msp.sessions.decisions import year_closed
from msp.sessions.policy import Amounts, Kind, Rule, Situation, YearSettings

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
    nir: Annotated[
        SecretStr,
        Documented(
            pattern=nir_rules.INPUT_PATTERN,
            description="The patient's social security number (NIR), spaces allowed: 13 characters then the "
            "2-digit key (97 minus the first 13 modulo 97, 2A and 2B read as 19 and 18).",
        ),
    ]
    birth_date: Annotated[
        dt.date, Documented(description="Its year and month (when the NIR has one) are those of the NIR.")
    ]

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


class Referral(BaseModel):
    """The referral letter (courrier d'adressage): who wrote it and when; nothing clinical is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A doctor's, or a midwife's for a pregnant patient.
    prescriber_rpps: Annotated[
        str,
        StringConstraints(strip_whitespace=True),
        Documented(pattern=RPPS_PATTERN, description="The prescriber's RPPS number: 11 digits, the last a Luhn key."),
    ]
    date: dt.date

    @field_validator("prescriber_rpps")
    @classmethod
    def _rpps(cls, value: str) -> str:
        problem = rpps_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class SessionDeclaration(_PatientData):
    """The body of POST /v1/sessions. The session's kind and price are the server's to decide (from the
    patient's count for the year), so nothing here says whether it is the first session."""

    patient: Patient
    date: Annotated[
        dt.date,
        Documented(
            description=lambda: (
                f"The day the session took place: from {policy.default_rules()[0].valid_from} (the programme's "
                "start) to today in Europe/Paris, within the psychologist's convention and in a year still open; "
                "the patient is 3 or older on that day."
            )
        ),
    ]
    # Who pays besides the common case (see policy_rules.json); null for none.
    situation: (
        Annotated[
            str,
            StringConstraints(max_length=40),
            Documented(
                enum=lambda: sorted({code for rule in policy.default_rules() for code in rule.situation_codes if code}),
                description="One of the situations the rule in force at the session date lists; null for none.",
            ),
        ]
        | None
    ) = None
    referral: (
        Annotated[
            Referral,
            Documented(
                description=lambda: (
                    "The referral letter, dated on or before the session: required for sessions before "
                    f"{min(rule.valid_from for rule in policy.default_rules() if not rule.referral_required)}."
                )
            ),
        ]
        | None
    ) = None


@dataclass(frozen=True)
class CheckedDeclaration:
    year: int
    rule: Rule
    situation: Situation


def age_on(birth_date: dt.date, day: dt.date) -> int:
    """Completed years; someone born on 29 February has a birthday on 1 March in other years."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def _patient_problems(patient: Patient, session_date: dt.date) -> list[dict[str, str]]:
    """The birth date against the NIR and the session date."""
    problems = []
    mismatch = nir_rules.birth_date_problem(patient.nir.get_secret_value(), patient.birth_date)
    if mismatch:
        problems.append({"field": "patient.birth_date", "message": mismatch})
    if patient.birth_date > session_date:
        problems.append({"field": "patient.birth_date", "message": "the birth date is after the session date"})
    elif age_on(patient.birth_date, session_date) < MINIMUM_AGE:
        message = f"the patient must be {MINIMUM_AGE} or older on the session date"
        problems.append({"field": "patient.birth_date", "message": message})
    return problems


def _referral_problems(referral: Referral | None, session_date: dt.date, rule: Rule, rules: Sequence[Rule] | None):
    """A referral dated after the session, or none where the rule requires one."""
    if referral is not None and referral.date > session_date:
        return [{"field": "referral.date", "message": "the referral letter must date from before the session"}]
    if rule.referral_required and referral is None:
        message = (
            f"sessions before {_direct_access_from(rule, rules)} need the referral letter: "
            'send {"prescriber_rpps": ..., "date": ...}'
        )
        return [{"field": "referral", "message": message}]
    return []


def check_declaration(
    declaration: SessionDeclaration,
    today: dt.date,
    rules: Sequence[Rule] | None = None,
    years: YearSettings | None = None,
) -> CheckedDeclaration:
    """The calendar year, rule and situation of a declaration, or one 422 listing everything to fix; 409 when
    the session's year is closed.

    `today` is the programme's date (Europe/Paris): a session held tonight is not in the future.
    """
    session_date = declaration.date
    problems: list[dict[str, str]] = []
    if session_date > today:
        problems.append({"field": "date", "message": "declare a session once it has taken place"})
    problems += _patient_problems(declaration.patient, session_date)
    rule, situation = None, None
    try:
        rule = policy.rule_for(session_date, rules)
        problems += _referral_problems(declaration.referral, session_date, rule, rules)
        situation = policy.checked_situation(rule, declaration.situation)
    except InvalidFields as error:
        problems.extend(error.details)

    if problems or rule is None or situation is None:
        raise InvalidFields("The session cannot be declared as sent.", details=problems)
    closed = year_closed(session_date.year, today, years)
    if closed:
        raise closed
    return CheckedDeclaration(year=session_date.year, rule=rule, situation=situation)


def _direct_access_from(rule: Rule, rules: Sequence[Rule] | None) -> str:
    """The start of the rule that follows `rule` (the day referrals stopped being required), or "now"."""
    table = policy.default_rules() if rules is None else rules
    later = [candidate.valid_from for candidate in table if candidate.valid_from > rule.valid_from]
    return min(later).isoformat() if later else "today"


def _keyed_digest(message: bytes, secret: bytes, key_id: str) -> str:
    """`<key_id>:<hex HMAC-SHA256 of the message>`: the id names the secret, so it can be rotated."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is 1 to 32 letters, digits, '-' or '_'")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the patient key secret must be at least {MIN_SECRET_BYTES} bytes")
    return f"{key_id}:{hmac.new(secret, message, hashlib.sha256).hexdigest()}"


def patient_key(nir: str | SecretStr, secret: bytes, key_id: str) -> str:
    """The keyed digest of the normalised NIR (see _keyed_digest)."""
    raw = nir.get_secret_value() if isinstance(nir, SecretStr) else nir
    normalised = nir_rules.normalise(raw)
    if nir_rules.nir_problem(normalised):
        raise ValueError("only a valid NIR can be turned into a patient key")
    return _keyed_digest(normalised.encode("ascii"), secret, key_id)


class QuotaStatus(BaseModel):
    """A patient's sessions in a calendar year against the quota."""

    year: int
    used: int = Field(ge=0)
    quota: int = Field(ge=1)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy cannot see through it
    @property
    def remaining(self) -> int:
        # A later rule may lower the quota below what was already used; nothing is left then, not less.
        return max(self.quota - self.used, 0)


class DeclaredSession(QuotaStatus):
    """The 201 answer to a declaration: the session's kind and ordinal in the patient's year (`used` counts
    it), the situation applied and each payer's amount."""

    session_id: str
    kind: Kind
    ordinal: int = Field(ge=1)
    situation: str | None
    amounts: Amounts


class QuotaQuery(Patient):
    """The body of POST /v1/sessions/quota: a patient and, by default, this year."""

    year: (
        Annotated[
            int,
            Field(ge=1, le=9999),
            Documented(
                minimum=lambda: policy.default_rules()[0].valid_from.year,
                description="From the programme's first year to the current one; this year when left out.",
            ),
        ]
        | None
    ) = None


def check_quota_query(query: QuotaQuery, today: dt.date, rules: Sequence[Rule] | None = None) -> tuple[int, Rule]:
    """The year asked about and the rule giving its quota, or one 422 listing everything to fix.

    The quota of a year is the one a session held today (or, for a past year, on its last day) would count
    against: in 2024, 12 sessions, although sessions before 15 June were capped at 8.
    """
    problems: list[dict[str, str]] = []
    year = query.year or today.year
    mismatch = nir_rules.birth_date_problem(query.nir.get_secret_value(), query.birth_date)
    if mismatch:
        problems.append({"field": "birth_date", "message": mismatch})
    rule = None
    if year > today.year:
        problems.append({"field": "year", "message": f"sessions of {year} cannot be declared yet"})
    else:
        try:
            rule = policy.rule_for(min(today, dt.date(year, 12, 31)), rules)
        except InvalidFields as error:
            problems.extend({"field": "year", "message": detail["message"]} for detail in error.details)
    if problems or rule is None:
        raise InvalidFields("The quota cannot be looked up as asked.", details=problems)
    return year, rule


# --- the patient key's secret


class KeyVersion(BaseModel):
    """One HMAC key: it keys the patients of `from_year` onwards, until a key with a later year takes over."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    key_id: Annotated[str, StringConstraints(pattern=_KEY_ID.pattern)]
    secret: SecretStr
    from_year: int = Field(default=0, ge=0)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the patient key secret must be at least {MIN_SECRET_BYTES} bytes")
        return value


class PatientKeyring(BaseModel):
    """The patient key secret's versions. A year's patients are always keyed with the same version, so a
    rotation (a new version from next year) never splits the counter a quota is checked against."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    keys: tuple[KeyVersion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> PatientKeyring:
        if len({key.key_id for key in self.keys}) != len(self.keys):
            raise ValueError("two key versions share a key_id")
        if len({key.from_year for key in self.keys}) != len(self.keys):
            raise ValueError("two key versions start the same year")
        return self

    @classmethod
    def from_secret(cls, document: str) -> PatientKeyring:
        """Parse the secret: {"key_id", "secret"} as generated, or {"keys": [...]} once rotated."""
        try:
            data = json.loads(document)
        except ValueError:
            raise ValueError("the patient key secret is not a JSON document") from None
        if isinstance(data, dict) and "keys" not in data:
            data = {"keys": [data]}
        return cls.model_validate(data)

    def version_for(self, year: int) -> KeyVersion:
        started = [key for key in self.keys if key.from_year <= year]
        if not started:
            raise ValueError(f"no patient key version covers {year}")
        return max(started, key=lambda key: key.from_year)

    def patient_key(self, nir: str | SecretStr, year: int) -> str:
        version = self.version_for(year)
        return patient_key(nir, version.secret.get_secret_value().encode(), version.key_id)

    def declaration_digest(self, declaration: SessionDeclaration, patient: str, year: int) -> str:
        """`<key_id>:<hex HMAC-SHA256>` of what makes two declarations the same request (see
        idempotency_fingerprint), under the year's key: stored with the session, it tells a replay from
        another body sent under the same Idempotency-Key, and without the secret says nothing of the body
        (a bare hash of it would give the birth date back to whoever tries the few dozen candidates)."""
        version = self.version_for(year)
        document = json.dumps(idempotency_fingerprint(declaration, patient), sort_keys=True, separators=(",", ":"))
        message = f"declaration\n{document}".encode()  # never a normalised NIR: the two uses cannot collide
        return _keyed_digest(message, version.secret.get_secret_value().encode(), version.key_id)


# --- what is stored


class SessionRecord(BaseModel):
    """A declared session as it is stored: the patient is only their key, the referral only its prescriber's
    number and date. Its kind, ordinal and amounts were decided on the patient's count (decisions.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str
    patient_key: str
    psychologist_sub: str
    date: dt.date
    year: int
    situation: str | None
    referral: Referral | None = None
    kind: Kind
    ordinal: int = Field(ge=1)
    amounts: Amounts
    quota: int = Field(ge=1)
    rule_valid_from: dt.date
    created_at: str
    # PatientKeyring.declaration_digest of the request that declared it (None for sessions loaded in bulk).
    request_digest: str | None = None

    @property
    def key_id(self) -> str:
        return self.patient_key.split(":", 1)[0]


@dataclass(frozen=True)
class SessionRequest:
    """A checked declaration before the patient's count is known: everything but its kind and price."""

    session_id: str
    patient_key: str
    psychologist_sub: str
    date: dt.date
    situation: Situation
    referral: Referral | None
    rule: Rule
    created_at: str
    request_digest: str | None = None

    @property
    def year(self) -> int:
        return self.date.year

    @property
    def quota(self) -> int:
        return self.rule.sessions_per_year

    def priced(self, ordinal: int) -> SessionRecord:
        """The session as the patient's `ordinal`-th of the year: its kind, and its amounts under its rule."""
        kind = policy.kind_of(ordinal)
        return SessionRecord(
            session_id=self.session_id,
            patient_key=self.patient_key,
            psychologist_sub=self.psychologist_sub,
            date=self.date,
            year=self.year,
            situation=self.situation.code,
            referral=self.referral,
            kind=kind,
            ordinal=ordinal,
            amounts=policy.amounts(self.rule, kind, self.situation),
            quota=self.quota,
            rule_valid_from=self.rule.valid_from,
            created_at=self.created_at,
            request_digest=self.request_digest,
        )


# Namespace of session ids derived from an Idempotency-Key (uuid5), fixed once for all.
SESSION_IDS = uuid.UUID("6f1c3a52-8d0e-4b7a-9c55-2e7d41f0a9b3")


def session_id_for(psychologist_sub: str, idempotency_key: str) -> str:
    """The id of the session a declaration creates, the same for every retry under one Idempotency-Key: a
    declaration run again after a crash finds the session it already recorded instead of counting twice."""
    return str(uuid.uuid5(SESSION_IDS, f"{psychologist_sub}\n{idempotency_key}"))


def idempotency_fingerprint(declaration: SessionDeclaration, key: str) -> dict[str, Any]:
    """What makes two declarations the same request, the patient given by their key.

    The session stores a keyed digest of this (PatientKeyring.declaration_digest); the NIR is not part of
    it all the same (a NIR hashed without a secret is easily found back: there are only so many NIRs for a
    birth month).
    """
    body = declaration.model_dump(mode="json", exclude={"patient"})
    body["patient"] = {"patient_key": key, "birth_date": declaration.patient.birth_date.isoformat()}
    return body


def quota_exhausted(year: int, used: int, quota: int) -> QuotaExhausted:
    return QuotaExhausted(
        f"The patient has already used the {quota} reimbursed sessions of {year}.",
        details=[{"year": year, "used": used, "quota": quota}],
    )
