"""Candidature models: what a psychologist submits, as validated by pydantic."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from msp import geography
from msp.documented import Documented, explained
from msp.identifiers import VALUE_PATTERN, adeli_problem, rpps_problem
from msp.languages import Language, Public

# Letters (any script), words joined by one space, hyphen or apostrophe.
NAME_PATTERN = r"^\p{L}+(?:[ '’-]\p{L}+)*$"


PHONE_HINT = "give a French number, e.g. +33612345678, 0612345678 or an overseas number"


def _phone(value: str) -> str:
    """The number in E.164 form; the pattern let through only numbers it can normalise."""
    normalised = geography.normalise_phone(value)
    if normalised is None:
        raise ValueError(PHONE_HINT)
    return normalised


# An address SES can send to (RFC 5321/5322 dot-atom, internationalised letters and digits allowed), checked here
# rather than with pydantic's EmailStr: email-validator and its Unicode tables cost every cold start ~20 ms.
_EMAIL_LOCAL = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")
_EMAIL_LABEL = re.compile(r"[^\W_]+(?:-+[^\W_]+)*")
# IANA special-use names: no mail is ever delivered there (nor to their subdomains).
RESERVED_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _mail_domain(domain: str) -> str:
    """The domain in lower case, if mail can be delivered there."""
    domain = domain.lower()
    labels = domain.split(".")
    well_formed = len(domain) <= 253 and len(labels) >= 2 and domain[-1].isalpha()
    if not well_formed or not all(len(label) <= 63 and _EMAIL_LABEL.fullmatch(label) for label in labels):
        raise ValueError("after the @, give a domain name such as exemple.fr")
    if labels[-1] in RESERVED_DOMAINS:
        raise ValueError(f"after the @, {domain} is a reserved name that receives no e-mail")
    return domain


def _email(value: str) -> str:
    """The address with its domain in lower case (as e-mail treats it); the part before the @ is kept as typed."""
    local, at, domain = unicodedata.normalize("NFC", value).rpartition("@")
    if not at or not local or "@" in local:
        raise ValueError("give one e-mail address with a single @, e.g. nom@exemple.fr")
    if len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError(
            "before the @, use at most 64 letters, digits or !#$%&'*+/=?^_`{|}~- characters, "
            "with single dots between them"
        )
    domain = _mail_domain(domain)
    if len(local) + 1 + len(domain) > 254:
        raise ValueError("an e-mail address has at most 254 characters")
    return f"{local}@{domain}"


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S")]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NAME_PATTERN),
    explained("use letters, spaces, hyphens or apostrophes only"),
]
Phone = Annotated[
    str,
    StringConstraints(max_length=30, pattern=geography.PHONE_PATTERN),
    explained(PHONE_HINT),
    AfterValidator(_phone),
    Documented(description="Sent as written (spaces, dots, hyphens, brackets allowed); answered in E.164 form."),
]
Email = Annotated[str, AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email"})]
EMAIL_RULES = (
    "An address mail can reach: a dot-atom before the @ (no quotes), a domain name after it (no IP address, no "
    f"reserved name: {', '.join(RESERVED_DOMAINS)}); answered with the domain in lower case."
)


UNIQUE_ITEMS = Documented(uniqueItems=True)
FULL_UNTIL = "With accepting_new_patients false only: the last day before taking new patients again."


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Identifier(Strict):
    type: Literal["rpps", "adeli"]
    value: Annotated[
        str,
        StringConstraints(to_upper=True, max_length=20),
        Documented(
            pattern=VALUE_PATTERN,
            description="RPPS: 11 digits, the last one a Luhn key. ADELI: the department (2 characters), 93 "
            "(a psychologist), then 5 digits.",
        ),
    ]

    @model_validator(mode="after")
    def _check_key(self) -> Identifier:
        problem = rpps_problem(self.value) if self.type == "rpps" else adeli_problem(self.value)
        if problem:
            raise ValueError(problem)
        return self


class Diploma(Strict):
    university: Text
    year: Annotated[int, Documented(minimum=1950, description="From 1950 to the current year.")]

    @field_validator("year")
    @classmethod
    def _plausible_year(cls, year: int) -> int:
        this_year = dt.date.today().year
        if not 1950 <= year <= this_year:
            raise ValueError(f"the diploma year must be between 1950 and {this_year}")
        return year


class Practice(Strict):
    """A practice address: its postcode in its department, its point (lat, lon) in the department's area."""

    address: Text
    postcode: Annotated[str, StringConstraints(pattern=r"^[0-9]{5}$")]
    city: Text
    department: Annotated[str, StringConstraints(to_upper=True), geography.DEPARTMENT_CODES]
    lat: Annotated[float, Field(ge=-90, le=90), geography.FRANCE_LATITUDES]
    lon: Annotated[float, Field(ge=-180, le=180), geography.FRANCE_LONGITUDES]

    @field_validator("department")
    @classmethod
    def _known_department(cls, department: str) -> str:
        if department not in geography.DEPARTMENTS:
            raise ValueError("use a department code: 01 to 95, 2A, 2B or 971 to 976")
        return department

    @model_validator(mode="after")
    def _consistent_location(self) -> Practice:
        if self.department not in geography.department_of_postcode(self.postcode):
            raise ValueError(f"postcode {self.postcode} is not in department {self.department}")
        area = geography.area_of_point(self.lat, self.lon)
        if area is None:
            raise ValueError("lat/lon must lie in metropolitan France, Corsica or an overseas department")
        if area != geography.expected_area(self.department):
            raise ValueError(f"lat/lon do not lie in department {self.department}")
        return self


class CandidatureFields(Strict):
    """Every editable field. A draft may leave any of them empty; submission needs them all."""

    civility: Literal["mme", "m"] | None = None
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = Field(default=None, description=EMAIL_RULES)
    phone: Phone | None = None
    identifier: Identifier | None = None
    diploma: Diploma | None = None
    experience_years: int | None = Field(default=None, ge=0, le=60)
    practices: list[Practice] | None = Field(default=None, min_length=1, max_length=3)
    languages: Annotated[list[Language], UNIQUE_ITEMS] | None = Field(default=None, min_length=1, max_length=20)
    publics: Annotated[list[Public], UNIQUE_ITEMS] | None = Field(default=None, min_length=1, max_length=3)
    teleconsultation: bool | None = None
    website: Annotated[HttpUrl, Documented(pattern="^[Hh][Tt][Tt][Pp][Ss]://")] | None = None
    public_email: Email | None = Field(default=None, description=EMAIL_RULES)
    public_phone: Phone | None = None
    # Availability: not taking new patients (false) until `full_until` if given, then taking them again.
    accepting_new_patients: bool | None = None
    full_until: Annotated[dt.date, Documented(description=FULL_UNTIL)] | None = None

    @field_validator("languages", "publics")
    @classmethod
    def _no_repeats(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("list each value once")
        return values

    @field_validator("website")
    @classmethod
    def _https_only(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and url.scheme != "https":
            raise ValueError("the website must use https://")
        return url

    @model_validator(mode="after")
    def _full_until_when_full(self) -> CandidatureFields:
        if self.full_until is not None and self.accepting_new_patients is not False:
            raise ValueError("full_until only goes with accepting_new_patients: false")
        return self

    def missing_for_submission(self) -> list[str]:
        return [name for name in SUBMISSION_FIELDS if getattr(self, name) is None]

    @property
    def department(self) -> str | None:
        """A candidature belongs to the department of its first practice."""
        return self.practices[0].department if self.practices else None


# What a submission (and an imported convention) needs: every field but these.
SUBMISSION_FIELDS = tuple(
    name
    for name in CandidatureFields.model_fields
    if name not in {"website", "public_email", "public_phone", "accepting_new_patients", "full_until"}
)


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    INFO_REQUESTED = "info_requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DECONVENTIONED = "deconventioned"
    WITHDRAWN = "withdrawn"


# States in which the candidature no longer holds its professional identifier: a new candidature may take it.
INACTIVE_STATUSES = frozenset({Status.WITHDRAWN, Status.REJECTED, Status.DECONVENTIONED})
EDITABLE_STATUSES = frozenset({Status.DRAFT, Status.INFO_REQUESTED})


class DocumentKind(StrEnum):
    DIPLOMA = "diploma"
    IDENTITY = "identity"
    IDENTIFIER_PROOF = "identifier_proof"


class DocumentType(StrEnum):
    PDF = "application/pdf"
    JPEG = "image/jpeg"
    PNG = "image/png"


MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_DOCUMENTS_PER_CANDIDATURE = 30


class DocumentStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class DocumentUploadRequest(Strict):
    kind: DocumentKind
    content_type: DocumentType
    size: int = Field(ge=1, le=MAX_DOCUMENT_BYTES)


class Document(BaseModel):
    document_id: str
    kind: DocumentKind
    content_type: DocumentType
    declared_size: int
    status: DocumentStatus = DocumentStatus.PENDING
    reason: str | None = None
    size: int | None = None
    requested_at: str

    def public(self) -> dict:
        return self.model_dump(mode="json", include={"document_id", "kind", "status", "reason", "content_type", "size"})


class Candidature(BaseModel):
    id: str
    owner_sub: str
    status: Status = Status.DRAFT
    version: int = 1
    created_at: str
    updated_at: str
    submitted_at: str | None = None
    status_reason: str | None = None
    fields: CandidatureFields
    documents: list[Document] = []
    # The candidature this one follows: the last one that held the same identifier (history for reviewers).
    previous_candidature_id: str | None = None
    # The convention it holds once accepted: first day, and last day once an end is decided (ISO dates).
    convention_start: dt.date | None = None
    convention_end: dt.date | None = None
    # Set when the retention period erased it: what is left is the anonymised skeleton.
    purged_at: str | None = None

    @property
    def department(self) -> str | None:
        return self.fields.department

    @property
    def holds_identifier(self) -> bool:
        return self.fields.identifier is not None and self.status not in INACTIVE_STATUSES

    def public(self) -> dict:
        """The representation every read returns."""
        body = self.fields.model_dump(mode="json", exclude_none=True)
        body.update(
            id=self.id,
            status=self.status.value,
            version=self.version,
            created_at=self.created_at,
            updated_at=self.updated_at,
            submitted_at=self.submitted_at,
            status_reason=self.status_reason,
            department=self.department,
            documents=[d.public() for d in self.documents],
            previous_candidature_id=self.previous_candidature_id,
            convention_start=self.convention_start.isoformat() if self.convention_start else None,
            convention_end=self.convention_end.isoformat() if self.convention_end else None,
        )
        return body


class AuditEvent(BaseModel):
    candidature_id: str
    version: int
    actor: str
    role: str
    action: str
    from_status: Status | None = None
    to_status: Status
    reason: str | None = None
    at: str
    # A listing edit names the fields it changed; an end of convention, the day it takes effect.
    changed_fields: list[str] | None = None
    effective_date: dt.date | None = None


class UploadTicket(BaseModel):
    document_id: str
    url: str
    fields: dict[str, str]
    expires_in: int


class DownloadTicket(BaseModel):
    document_id: str
    kind: DocumentKind
    content_type: DocumentType
    url: str
    expires_in: int


# ---------------------------------------------------------------- review


# Statuses a reviewer's queue can list: those a candidature reaches once submitted.
QUEUE_STATUSES = frozenset(
    {
        Status.SUBMITTED,
        Status.IN_REVIEW,
        Status.INFO_REQUESTED,
        Status.ACCEPTED,
        Status.REJECTED,
        Status.DECONVENTIONED,
    }
)


class QueueEntry(BaseModel):
    """One line of the review queue: what a reviewer needs to pick a candidature."""

    id: str
    status: Status
    version: int
    department: str
    submitted_at: str
    updated_at: str
    civility: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    postcode: str | None = None
    practices: int = 0


class QueuePage(BaseModel):
    results: list[QueueEntry]
    next_cursor: str | None = None


class DecisionEvent(BaseModel):
    """What a review decision tells the rest of the system: identifiers only, no personal data.

    The notifier reads the candidature and the audit event of `version` for the rest.
    """

    candidature_id: str
    version: int
    action: str
    to_status: Status
    at: str

    @classmethod
    def of(cls, candidature: Candidature, action: str) -> DecisionEvent:
        """The event of `action`, just saved as this version of the candidature."""
        return cls(
            candidature_id=candidature.id,
            version=candidature.version,
            action=action,
            to_status=candidature.status,
            at=candidature.updated_at,
        )


class EmailMessage(BaseModel):
    to: str
    subject: str
    body: str
    # Stable per decision, so a redelivered event never produces a second, different message.
    reference: str
