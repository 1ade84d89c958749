"""An accepted psychologist keeps their listing current: public contact, languages, publics, teleconsultation,
practices and whether they take new patients. Identity (name, identifier, diploma) stays with the reviewers.

Each edit is a new version of the accepted candidature, saved with its audit event and the re-listing the
domain planned (`decision_effects`), in one transaction: the directory always shows the saved version.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, HttpUrl, model_validator

from msp.auth import Caller, Role
from msp.candidatures.convention import decision_effects
from msp.candidatures.models import (
    EMAIL_RULES,
    FULL_UNTIL,
    UNIQUE_ITEMS,
    Candidature,
    CandidatureFields,
    Email,
    Language,
    Phone,
    Practice,
    Public,
    Status,
    Strict,
)
from msp.candidatures.ports import CandidatureRepository
from msp.candidatures.use_cases import audit_event
from msp.clock import now_iso
from msp.documented import Documented, never_null
from msp.errors import IdentityLocked, InvalidFields, NotConventioned, VersionMismatch

LISTING_FIELDS = (
    "public_email",
    "public_phone",
    "website",
    "languages",
    "publics",
    "teleconsultation",
    "practices",
    "accepting_new_patients",
    "full_until",
)
IDENTITY_FIELDS = frozenset(CandidatureFields.model_fields) - set(LISTING_FIELDS)
# A listing cannot go without these: they may change, never be cleared.
REQUIRED_FIELDS = ("languages", "publics", "teleconsultation", "practices")


class ListingChanges(Strict):
    """What `PATCH /v1/me/listing` takes: any subset; a field sent replaces, null clears an optional one.

    `practices` is the whole new list (1 to 3): a practice left out is removed, a new one added, a changed
    address moved. Identity fields are refused with the reason (identity_locked)."""

    public_email: Email | None = Field(default=None, description=EMAIL_RULES)
    public_phone: Phone | None = None
    website: HttpUrl | None = None
    # Left out to keep them; never null (see _listing_keeps_its_essentials).
    languages: Annotated[list[Language], UNIQUE_ITEMS] | None = Field(
        default=None, min_length=1, max_length=20, json_schema_extra=never_null
    )
    publics: Annotated[list[Public], UNIQUE_ITEMS] | None = Field(
        default=None, min_length=1, max_length=3, json_schema_extra=never_null
    )
    teleconsultation: bool | None = Field(default=None, json_schema_extra=never_null)
    practices: list[Practice] | None = Field(default=None, min_length=1, max_length=3, json_schema_extra=never_null)
    accepting_new_patients: bool | None = None
    full_until: Annotated[dt.date, Documented(description=FULL_UNTIL)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _identity_stays(cls, data: Any) -> Any:
        # Raised as the domain error itself (not a ValueError), so pydantic lets it through to the edge.
        locked = sorted(set(data) & IDENTITY_FIELDS) if isinstance(data, dict) else []
        if locked:
            raise IdentityLocked(
                "Your name, identifier, diploma and private contact details cannot be changed here once you are "
                "conventioned: contact a reviewer (instructeur) of your department to change them.",
                details=[{"field": name, "message": "contact a reviewer to change it"} for name in locked],
            )
        return data

    @model_validator(mode="after")
    def _listing_keeps_its_essentials(self) -> ListingChanges:
        cleared = [name for name in REQUIRED_FIELDS if name in self.model_fields_set and getattr(self, name) is None]
        if cleared:
            raise ValueError(
                f"{', '.join(cleared)} cannot be cleared: a listing keeps at least one practice, language and public"
            )
        return self


class ListingView(Strict):
    """The accepted psychologist's listing as they edit it, with the version to send back in If-Match."""

    psychologist_id: str
    version: int
    public_email: str | None = None
    public_phone: str | None = None
    website: str | None = None
    languages: list[str]
    publics: list[str]
    teleconsultation: bool
    practices: list[dict[str, Any]]
    accepting_new_patients: bool
    full_until: dt.date | None = None
    convention_start: dt.date | None = None
    convention_end: dt.date | None = None


def conventioned_candidature(store: CandidatureRepository, caller: Caller) -> Candidature:
    """The caller's accepted candidature, the one holding their convention; NotConventioned otherwise."""
    caller.require(Role.PSYCHOLOGIST)
    convention = store.convention(caller.sub)
    if convention is None or convention.get("status") != "accepted":
        raise NotConventioned("Only a conventioned psychologist (accepted candidature) has a listing to edit.")
    candidature = store.get(convention["candidature_id"])
    if candidature.status is not Status.ACCEPTED or candidature.owner_sub != caller.sub:
        raise NotConventioned("Only a conventioned psychologist (accepted candidature) has a listing to edit.")
    return candidature


def listing_view(candidature: Candidature, today: dt.date) -> ListingView:
    from msp.directory.listing import accepts_new_patients, listing_items_for

    fields = candidature.fields
    listed = listing_items_for(candidature.id, fields)
    accepting = accepts_new_patients(listed[0].accepting_new_patients, listed[0].full_until, today)
    return ListingView(
        psychologist_id=candidature.id,
        version=candidature.version,
        public_email=fields.public_email,
        public_phone=fields.public_phone,
        website=str(fields.website) if fields.website else None,
        languages=listed[0].languages,
        publics=listed[0].publics,
        teleconsultation=listed[0].teleconsultation,
        practices=[
            {"practice_id": item.practice_id} | practice.model_dump(mode="json")
            for item, practice in zip(listed, fields.practices or [], strict=True)
        ],
        accepting_new_patients=accepting,
        full_until=None if accepting else fields.full_until,
        convention_start=candidature.convention_start,
        convention_end=candidature.convention_end,
    )


def read_listing(store: CandidatureRepository, caller: Caller, today: dt.date) -> ListingView:
    return listing_view(conventioned_candidature(store, caller), today)


def edit_listing(
    store: CandidatureRepository, caller: Caller, changes: ListingChanges, if_match: int, today: dt.date
) -> ListingView:
    """Apply the changes at the version read, re-list in the same transaction, and record who changed what."""
    current = conventioned_candidature(store, caller)
    if current.version != if_match:
        raise VersionMismatch(
            f"Version {if_match} is stale: your listing is at version {current.version}. Read it again and retry."
        )
    sent = changes.model_dump(mode="json", include=changes.model_fields_set)
    if sent.get("accepting_new_patients") is True:
        sent["full_until"] = None  # taking patients again ends any "full until"
    if changes.full_until is not None and changes.full_until <= today:
        raise InvalidFields(
            "full_until must be a later day than today.",
            details=[{"field": "full_until", "message": "give a future date, or leave it out"}],
        )
    fields = CandidatureFields.model_validate(current.fields.model_dump(mode="json") | sent)
    updated = current.model_copy(update={"fields": fields, "version": current.version + 1, "updated_at": now_iso()})
    audit = audit_event(updated, caller, Role.PSYCHOLOGIST, "edit_listing", previous=current).model_copy(
        update={"changed_fields": sorted(changes.model_fields_set)}
    )
    store.save(updated, previous=current, audit=audit, effects=decision_effects(current, updated))
    return listing_view(updated, today)
