"""The directory: what is listed when a candidature is accepted, and the exact nearest-practice search.

Search reads cells outward from the patient's point, in a few steps, until the page is provably
the nearest: every practice not read yet is farther than the last one returned (see covering.py).
Storage is behind `ListingQueryPort`; this module never sees DynamoDB.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, Protocol, runtime_checkable

import h3
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from msp import cursors, geography
from msp.cellkeys import (
    FINE_RESOLUTION,
    KeyRange,
    Span,
    bridge_gaps,
    fine_cell_of,
    index_keys,
    key_range,
    spans_of,
    subtract,
    union,
)
from msp.covering import cover_disk
from msp.errors import BadRequest, NotFound, Unprocessable
from msp.models import CandidatureFields, Language, Public
from msp.names import fold, matches_prefix, name_tokens
from msp.spherical import haversine_km

MAX_RADIUS_KM = 100
MAX_LIMIT = 50
# Covering a little beyond the radius (more than the covering's own slack) makes the proof reach it.
_RADIUS_SLACK_KM = 1e-4


class ListedPractice(NamedTuple):
    """One practice as stored in the directory: its keys and only the fields a search shows or filters on.

    A plain record, not a validated model: it is built from a validated candidature, or read back from
    what storage wrote, and a search reads about a hundred of them (a NamedTuple is built about three
    times faster than a pydantic model, even unvalidated). The fields after the keys are in the order
    storage writes them (`storage.LISTING_FIELDS`).
    """

    partition: str
    sort_key: str
    practice_id: str
    psychologist_id: str
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


def listing_items_for(psychologist_id: str, fields: CandidatureFields) -> list[ListedPractice]:
    """The items listed when a candidature is accepted: one per practice address.

    Contact details are the public ones the psychologist chose (`public_phone`, `public_email`);
    the identity phone and email stay private.
    """
    required = ("first_name", "last_name", "practices", "languages", "publics", "teleconsultation")
    missing = [name for name in required if getattr(fields, name) is None]
    if missing:
        raise Unprocessable(
            "Only a complete candidature can be listed.",
            code="incomplete_candidature",
            details=[{"field": name, "message": "required to list"} for name in missing],
        )
    tokens = name_tokens(fields.first_name, fields.last_name)
    items = []
    for index, practice in enumerate(fields.practices, start=1):
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
                languages=list(fields.languages),
                publics=list(fields.publics),
                teleconsultation=fields.teleconsultation,
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


def profile_for(psychologist_id: str, fields: CandidatureFields) -> PublicProfile:
    """The public profile listed with the practices (same fields, so the two never disagree)."""
    practices = listing_items_for(psychologist_id, fields)
    first = practices[0]
    return PublicProfile(
        psychologist_id=psychologist_id,
        name=first.name,
        phone=first.phone,
        email=first.email,
        website=first.website,
        languages=first.languages,
        publics=first.publics,
        teleconsultation=first.teleconsultation,
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


_PSYCHOLOGIST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def public_profile(port: ProfilePort, psychologist_id: str) -> PublicProfile:
    """A listed psychologist's public profile; 404 for anyone else, whatever the reason."""
    profile = port.profile(psychologist_id) if _PSYCHOLOGIST_ID.match(psychologist_id) else None
    if profile is None:
        raise NotFound("No listed psychologist with this id.")
    return profile


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


class SearchQuery(BaseModel):
    """A search as sent in the query string.

    Every filter given must match: `teleconsultation=false` asks for practices without
    teleconsultation, leaving it out asks for all.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    radius_km: float = Field(default=10, gt=0, le=MAX_RADIUS_KM, allow_inf_nan=False)
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    cursor: Annotated[str, StringConstraints(max_length=1000)] | None = None
    public: Public | None = None
    teleconsultation: bool | None = None
    language: Language | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _lowercase_language(cls, language: object) -> object:
        return language.lower() if isinstance(language, str) else language

    @field_validator("name")
    @classmethod
    def _searchable_name(cls, name: str | None) -> str | None:
        if name is not None and not fold(name):
            raise ValueError("give at least one letter of a first or last name")
        return name

    @field_validator("lon")
    @classmethod
    def _in_france(cls, lon: float, info: ValidationInfo) -> float:
        # On lon (validated after lat), so a 422 names a query parameter rather than the whole query.
        lat = info.data.get("lat")
        if lat is not None and geography.area_of_point(lat, lon) is None:
            raise ValueError("lat/lon must lie in metropolitan France, Corsica or an overseas department")
        return lon

    def admits(self, practice: ListedPractice) -> bool:
        """Whether a practice passes the filters (distance aside)."""
        return (
            (self.public is None or self.public in practice.publics)
            and (self.teleconsultation is None or practice.teleconsultation == self.teleconsultation)
            and (self.language is None or self.language in practice.languages)
            and (self.name is None or matches_prefix(practice.name_tokens, fold(self.name)))
        )

    def fingerprint(self) -> str:
        """What defines the sequence of results; the page size may change between pages."""
        criteria = self.model_dump(mode="json", exclude={"limit", "cursor"})
        criteria["name"] = fold(self.name) if self.name else None
        return hashlib.sha256(json.dumps(criteria, sort_keys=True).encode()).hexdigest()


class SearchResult(BaseModel):
    psychologist_id: str
    practice_id: str
    name: str
    distance_km: float
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


class SearchPage(BaseModel):
    results: list[SearchResult]
    next_cursor: str | None


@runtime_checkable
class ListingQueryPort(Protocol):
    def query_range(self, partition: str, low: str, high: str) -> list[ListedPractice]:
        """Items of `partition` whose sort key is BETWEEN low AND high (inclusive), all pages of them."""
        ...


@runtime_checkable
class BatchListingQueryPort(ListingQueryPort, Protocol):
    def query_ranges(self, ranges: Sequence[KeyRange]) -> list[ListedPractice]:
        """The items of every range; a storage may run the queries concurrently."""
        ...


@runtime_checkable
class DensityHintPort(Protocol):
    def density_per_km2(self, lat: float, lon: float) -> float | None:
        """About how many practices per km² are listed around the point, if the storage knows.

        Only the first step's radius depends on it: a good hint saves steps, a bad one costs
        requests or items, never exactness.
        """
        ...


@dataclass(frozen=True)
class SearchTuning:
    """How the search expands. Exactness never depends on these, only requests and items read."""

    # Holds about 20 practices in central Paris (~30-45 practices per km²); scaled with the limit.
    first_radius_km: float = 0.5
    # Requests per step: neighbouring ranges are joined (reading what lies between) down to this...
    ranges_per_step: int = 3
    # ...or this after the first step, which is rarer and reads sparser places.
    ranges_per_later_step: int = 3
    # ...but never across a gap larger than this fraction of the step's covering.
    max_gap_ratio: float = 1.0
    # A request costs about as much as reading this many items: once the density is known, a gap
    # expected to hold fewer is read rather than queried around.
    request_cost_items: float = 25
    # Next step: the radius the density seen so far predicts, with this margin, within these bounds.
    margin: float = 1.15
    min_growth: float = 1.5
    max_growth: float = 8.0
    # Flattest growth of counts with the radius assumed (2 where practices are spread evenly).
    min_exponent: float = 0.75


DEFAULT_TUNING = SearchTuning()

_Rank = tuple[float, str]


def _cursor_position(query: SearchQuery, secret: bytes) -> _Rank | None:
    if query.cursor is None:
        return None
    position = cursors.open_sealed(query.cursor, context=query.fingerprint(), secret=secret)
    try:
        distance, practice_id = float.fromhex(position["d"]), position["id"]
    except (KeyError, TypeError, ValueError):
        raise BadRequest("The cursor is invalid.", code="invalid_cursor") from None
    if not isinstance(practice_id, str) or not math.isfinite(distance):
        raise BadRequest("The cursor is invalid.", code="invalid_cursor")
    return distance, practice_id


def _seal(rank: _Rank, query: SearchQuery, secret: bytes) -> str:
    # float.hex keeps the exact distance, so the next page resumes exactly after it.
    return cursors.seal({"d": rank[0].hex(), "id": rank[1]}, context=query.fingerprint(), secret=secret)


def _read(port: ListingQueryPort, ranges: list[KeyRange]) -> list[ListedPractice]:
    if not ranges:
        return []
    if isinstance(port, BatchListingQueryPort):
        return port.query_ranges(ranges)
    return [item for r in ranges for item in port.query_range(r.partition, r.low, r.high)]


def _result(distance: float, practice: ListedPractice) -> SearchResult:
    fields: dict[str, Any] = practice._asdict()
    for key in ("partition", "sort_key", "name_tokens"):
        del fields[key]
    return SearchResult(distance_km=round(distance, 3), **fields)


def search_nearest(
    port: ListingQueryPort, query: SearchQuery, *, cursor_secret: bytes, tuning: SearchTuning = DEFAULT_TUNING
) -> SearchPage:
    """The next page of practices within the radius passing the filters, by distance then practice id.

    Pages chained by `next_cursor` give exactly the sequence one unlimited page would.
    """
    after = _cursor_position(query, cursor_secret)
    # One more than a page proves whether another page exists.
    wanted = query.limit + 1
    complete_km = query.radius_km + _RADIUS_SLACK_KM
    cursors.require_secret(cursor_secret)
    density = port.density_per_km2(query.lat, query.lon) if isinstance(port, DensityHintPort) else None
    if density is not None and 0 < density < math.inf:
        first_km = math.sqrt(wanted / (math.pi * density)) * tuning.margin
    else:
        first_km = tuning.first_radius_km * math.sqrt(wanted / 21)
    target_km = math.hypot(after[0], first_km) if after else first_km
    found: dict[str, tuple[float, ListedPractice]] = {}
    done: list[Span] = []
    items_read = 0
    history: list[tuple[float, int]] = []  # (proven radius, results within it) after each step
    while True:
        covering = cover_disk(query.lat, query.lon, min(target_km, complete_km))
        spans = subtract(spans_of(covering.cells), done)
        covering_size = len(covering.cells) * 7 ** (FINE_RESOLUTION - covering.resolution)
        spans = bridge_gaps(
            spans,
            budget=tuning.ranges_per_later_step if history else tuning.ranges_per_step,
            cheap_gap=_cheap_gap(items_read, done, tuning),
            max_gap=int(covering_size * tuning.max_gap_ratio),
        )
        batch = _read(port, [key_range(span) for span in spans])
        items_read += len(batch)
        for practice in batch:
            distance = haversine_km(query.lat, query.lon, practice.lat, practice.lon)
            if distance <= query.radius_km and query.admits(practice):
                found[practice.practice_id] = (distance, practice)
        done = union(done, spans)
        proven_km = covering.proven_km
        history.append((proven_km, sum(1 for distance, _ in found.values() if distance < proven_km)))
        ranked = sorted(
            ((distance, practice_id), practice)
            for practice_id, (distance, practice) in found.items()
            if after is None or (distance, practice_id) > after
        )
        if proven_km > query.radius_km or (len(ranked) >= wanted and ranked[wanted - 1][0][0] < proven_km):
            break
        before = sum(1 for pid, (distance, _) in found.items() if after and (distance, pid) <= after)
        target_km = _next_target(history, wanted + before, tuning)
    page = ranked[: query.limit]
    next_cursor = _seal(page[-1][0], query, cursor_secret) if len(ranked) > query.limit else None
    return SearchPage(results=[_result(rank[0], practice) for rank, practice in page], next_cursor=next_cursor)


def _next_target(history: list[tuple[float, int]], needed: int, tuning: SearchTuning) -> float:
    """The radius expected to hold `needed` results, from the counts proven so far.

    Counts grow like radius² only where practices are spread evenly; around a town they grow
    slower, so the exponent is fitted on the last two steps (a uniform guess needs extra steps).
    """
    proven_km, count = history[-1]
    if count == 0:
        return proven_km * tuning.max_growth
    exponent = 2.0
    if len(history) > 1 and history[-2][1] > 0 and history[-2][0] < proven_km:
        inner_km, inner_count = history[-2]
        exponent = math.log(count / inner_count) / math.log(proven_km / inner_km)
        exponent = min(max(exponent, tuning.min_exponent), 2.0)
    estimate = proven_km * (needed / count) ** (1 / exponent) * tuning.margin
    return min(max(estimate, proven_km * tuning.min_growth), proven_km * tuning.max_growth)


def _cheap_gap(items_read: int, done: list[Span], tuning: SearchTuning) -> int:
    """The widest gap (in fine cells) expected to hold fewer items than a request costs.

    Zero before anything is read. The density is overestimated as if three more items had been
    seen, so an unlucky empty first read does not make a whole city look empty.
    """
    cells_read = sum(span.size for span in done)
    if not cells_read:
        return 0
    return int(tuning.request_cost_items * cells_read / (items_read + 3))
