"""What the directory lists: one item per practice of an accepted psychologist, their public profile and the
density counters, and the plan of every change to them.

The domain decides what to list, unlist and count (`plan_listing`); storage writes that plan in the same
transaction as the candidature that caused it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import h3
from pydantic import BaseModel

from msp.directory.cellkeys import fine_cell_of, index_keys
from msp.directory.names import name_tokens
from msp.errors import IncompleteCandidature, NotFound

if TYPE_CHECKING:  # the candidature's models, built at import, are not for the profile and search routes
    from msp.candidatures.models import CandidatureFields


class ListedPractice(NamedTuple):
    """One practice as stored in the directory: its keys and only the fields a search shows or filters on.

    A plain record, not a validated model: it is built from a validated candidature, or read back from
    what storage wrote, and a search reads about a hundred of them (a NamedTuple is built about three
    times faster than a pydantic model, even unvalidated). The fields after the keys are in the order
    storage writes them (`LISTING_FIELDS`).
    """

    partition: str
    sort_key: str
    psychologist_id: str
    practice_id: str
    name: str
    name_tokens: list[str]
    address: str
    postcode: str
    city: str
    department: str
    lat: float
    lon: float
    phone: str | None
    email: str | None
    website: str | None
    languages: list[str]
    publics: list[str]
    teleconsultation: bool
    # Availability as the psychologist set it (see `accepts_new_patients` for what it means on a given day).
    accepting_new_patients: bool = True
    full_until: str | None = None


def accepts_new_patients(accepting: bool, full_until: str | None, today: dt.date) -> bool:
    """Whether a listed psychologist takes new patients today: as they said, or again once `full_until` passed."""
    return accepting or (full_until is not None and full_until < today.isoformat())


# A stored practice's `listing` attribute: the record's fields after its keys, as one JSON array in this order,
# but the practice id (the sort key's tail). Derived from ListedPractice, so the two cannot drift apart.
LISTING_FIELDS = tuple(name for name in ListedPractice._fields[2:] if name != "practice_id")


def listing_items_for(psychologist_id: str, fields: CandidatureFields) -> list[ListedPractice]:
    """The items listed when a candidature is accepted: one per practice address.

    Contact details are the public ones the psychologist chose (`public_phone`, `public_email`);
    the identity phone and email stay private.
    """
    required = ("first_name", "last_name", "practices", "languages", "publics", "teleconsultation")
    values: dict[str, Any] = {name: getattr(fields, name) for name in required}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise IncompleteCandidature(
            "Only a complete candidature can be listed.",
            details=[{"field": name, "message": "required to list"} for name in missing],
        )
    tokens = name_tokens(values["first_name"], values["last_name"])
    items = []
    for index, practice in enumerate(values["practices"], start=1):
        practice_id = f"{psychologist_id}-{index}"
        partition, sort_key = index_keys(practice.lat, practice.lon, practice_id)
        items.append(
            ListedPractice(
                partition=partition,
                sort_key=sort_key,
                psychologist_id=psychologist_id,
                practice_id=practice_id,
                name=f"{fields.first_name} {fields.last_name}",
                name_tokens=tokens,
                address=practice.address,
                postcode=practice.postcode,
                city=practice.city,
                department=practice.department,
                lat=practice.lat,
                lon=practice.lon,
                phone=fields.public_phone,
                email=fields.public_email,
                website=str(fields.website) if fields.website else None,
                languages=list(values["languages"]),
                publics=list(values["publics"]),
                teleconsultation=values["teleconsultation"],
                accepting_new_patients=fields.accepting_new_patients is not False,
                full_until=fields.full_until.isoformat() if fields.full_until else None,
            )
        )
    return items


# ---------------------------------------------------------------- public profile


class ProfilePractice(BaseModel):
    practice_id: str
    address: str
    postcode: str
    city: str
    department: str
    lat: float
    lon: float


class PublicProfile(BaseModel):
    """What anyone may read about a listed psychologist: the listing's fields, grouped by psychologist."""

    psychologist_id: str
    name: str
    # Storage leaves out what is None: absent contact details read back as None.
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    languages: list[str]
    publics: list[str]
    teleconsultation: bool
    practices: list[ProfilePractice]
    accepting_new_patients: bool = True
    full_until: str | None = None


# The profile's fields every listed practice carries alike (name, public contact, languages, ...).
_SHARED_BY_PRACTICES = tuple(
    name for name in PublicProfile.model_fields if name not in {"psychologist_id", "practices"}
)


def profile_for(psychologist_id: str, fields: CandidatureFields) -> PublicProfile:
    """The public profile listed with the practices (same fields, so the two never disagree)."""
    practices = listing_items_for(psychologist_id, fields)
    shared = {name: getattr(practices[0], name) for name in _SHARED_BY_PRACTICES}
    return PublicProfile(
        psychologist_id=psychologist_id,
        **shared,
        practices=[
            ProfilePractice.model_validate({name: getattr(p, name) for name in ProfilePractice.model_fields})
            for p in practices
        ],
    )


@runtime_checkable
class ProfilePort(Protocol):
    def profile(self, psychologist_id: str) -> PublicProfile | None:
        """The listed psychologist's profile; None when not listed (never accepted, or deconventioned)."""
        ...


PSYCHOLOGIST_ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
_PSYCHOLOGIST_ID = re.compile(PSYCHOLOGIST_ID_PATTERN)


def public_profile(port: ProfilePort, psychologist_id: str, today: dt.date) -> PublicProfile:
    """A listed psychologist's public profile, with their availability as of today; 404 for anyone else,
    whatever the reason."""
    profile = port.profile(psychologist_id) if _PSYCHOLOGIST_ID.fullmatch(psychologist_id) else None
    if profile is None:
        raise NotFound("No listed psychologist with this id.")
    accepting = accepts_new_patients(profile.accepting_new_patients, profile.full_until, today)
    return profile.model_copy(
        update={"accepting_new_patients": accepting, "full_until": None if accepting else profile.full_until}
    )


# ---------------------------------------------------------------- density hint
#
# Storage counts the practices listed in each cell at DENSITY_RESOLUTION (~5 km², ~1.4 km edge), in one
# small item per DENSITY_REGION_RESOLUTION cell (~12,400 km²; at most 2,401 counters each), so a search
# reads the counters of the few regions around its point once and keeps them warm. Measured on the
# benchmark's national dataset: resolution 5 counters (one national item) guess a town-centre density
# about half too low (the point is where people are, denser than the town's average), and the first
# step then reads twice what it needs; resolution 7 sees the town centre itself.

DENSITY_RESOLUTION = 7
DENSITY_REGION_RESOLUTION = 3
# The hint aims at the density around the point at the scale of a default page (limit 20, plus one).
_HINT_TARGET = 21
# 12 rings of resolution 7 reach ~29 km: always within the region of the point and its neighbours.
_HINT_MAX_RING = 12


def density_cell(practice: ListedPractice) -> str:
    """The density counter a practice counts in: an ancestor of its fine cell, like its partition."""
    return h3.cell_to_parent(fine_cell_of(practice.sort_key), DENSITY_RESOLUTION)


def density_region(cell: str) -> str:
    """The region whose counters item holds this density cell's counter."""
    return h3.cell_to_parent(cell, DENSITY_REGION_RESOLUTION)


def density_regions_around(lat: float, lon: float) -> list[str]:
    """The regions whose counters a hint at this point may read: its own and its neighbours."""
    return sorted(h3.grid_disk(h3.latlng_to_cell(lat, lon, DENSITY_REGION_RESOLUTION), 1))


def density_changes(practices: Sequence[ListedPractice], sign: int) -> dict[str, dict[str, int]]:
    """Counter increments (sign 1) or decrements (sign -1) when these practices are listed or unlisted,
    by region then density cell."""
    changes: dict[str, dict[str, int]] = {}
    for practice in practices:
        cell = density_cell(practice)
        region = changes.setdefault(density_region(cell), {})
        region[cell] = region.get(cell, 0) + sign
    return changes


def density_from_counts(counts: Mapping[str, int] | None, lat: float, lon: float) -> float | None:
    """Practices per km² in the smallest disk of density cells around the point holding a page of them.

    Growing the disk ring by ring until it holds a page measures the density at the scale the first
    step will read: a town centre where it is one, the countryside around a village. None when the
    counters are unknown; nothing listed around gives the density of one practice in the widest disk.
    """
    if counts is None:
        return None
    centre = h3.latlng_to_cell(lat, lon, DENSITY_RESOLUTION)
    cell_km2 = h3.average_hexagon_area(DENSITY_RESOLUTION, "km^2")
    total = 0
    for ring in range(_HINT_MAX_RING + 1):
        total += sum(max(counts.get(cell, 0), 0) for cell in h3.grid_ring(centre, ring))
        if total >= _HINT_TARGET:
            break
    cells = 1 + 3 * ring * (ring + 1)
    return max(total, 1) / (cells * cell_km2)


@dataclass(frozen=True)
class ListingPlan:
    """The directory's side of a candidature's change, decided here and written by storage in the same
    transaction: the practices to put (all current ones: a changed field rewrites them), the ones to delete,
    the public profile to put or delete, and the density counters to move (region -> cell -> change)."""

    psychologist_id: str
    put: tuple[ListedPractice, ...] = ()
    delete: tuple[ListedPractice, ...] = ()
    profile: PublicProfile | None = None
    delete_profile: bool = False
    density: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.put or self.delete or self.profile or self.delete_profile)


def _merged_changes(*changes: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Counter changes added up, by region then cell, leaving out what cancels out."""
    total: dict[str, dict[str, int]] = {}
    for change in changes:
        for region, cells in change.items():
            counters = total.setdefault(region, {})
            for cell, step in cells.items():
                counters[cell] = counters.get(cell, 0) + step
    nonzero = {region: {cell: n for cell, n in cells.items() if n} for region, cells in total.items()}
    return {region: cells for region, cells in nonzero.items() if cells}


def _listed(psychologist_id: str, fields: CandidatureFields | None) -> list[ListedPractice]:
    return [] if fields is None else listing_items_for(psychologist_id, fields)


def _missing_from(practices: Sequence[ListedPractice], others: Sequence[ListedPractice]) -> list[ListedPractice]:
    """The practices whose keys are not among the others'."""
    keys = {(p.partition, p.sort_key) for p in others}
    return [p for p in practices if (p.partition, p.sort_key) not in keys]


def plan_listing(
    psychologist_id: str, listed_before: CandidatureFields | None, listed_after: CandidatureFields | None
) -> ListingPlan:
    """From what was listed (None: nothing) to what must be listed now (None: nothing)."""
    before, after = _listed(psychologist_id, listed_before), _listed(psychologist_id, listed_after)
    leaving = _missing_from(before, after)
    arriving = _missing_from(after, before)
    return ListingPlan(
        psychologist_id=psychologist_id,
        put=tuple(after),
        delete=tuple(leaving),
        profile=None if listed_after is None else profile_for(psychologist_id, listed_after),
        delete_profile=listed_after is None and listed_before is not None,
        density=_merged_changes(density_changes(arriving, 1), density_changes(leaving, -1)),
    )
