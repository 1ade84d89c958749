"""The directory's exact nearest-practice search.

Search reads cells outward from the patient's point, in a few steps, until the page is provably
the nearest: every practice not read yet is farther than the last one returned (see covering.py).
Storage is behind `ListingQueryPort`; this module never sees DynamoDB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Annotated, Any, Protocol, TypeGuard, get_type_hints, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, create_model, field_validator

from msp import cursors, geography
from msp.clock import programme_today
from msp.directory.cellkeys import KeyRange, Span, bridge_gaps, key_range, subtract, union
from msp.directory.covering import disk_spans
from msp.directory.listing import ListedPractice, accepts_new_patients
from msp.directory.names import fold, matches_prefix
from msp.directory.spherical import distances_from
from msp.documented import Documented
from msp.errors import InvalidCursor, SearchTooBroad
from msp.languages import Language, Public

MAX_RADIUS_KM = 100
MAX_LIMIT = 50
# Covering a little beyond the radius (more than the covering's own slack) makes the proof reach it.
_RADIUS_SLACK_KM = 1e-4


class SearchQuery(BaseModel):
    """A search as sent in the query string.

    Every filter given must match: `teleconsultation=false` asks for practices without
    teleconsultation, leaving it out asks for all.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False), geography.FRANCE_LATITUDES]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False), geography.FRANCE_LONGITUDES]
    radius_km: float = Field(default=10, gt=0, le=MAX_RADIUS_KM, allow_inf_nan=False)
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    cursor: (
        Annotated[
            str,
            StringConstraints(max_length=1000),
            Documented(description="The next_cursor of the previous page, for the same search (valid for an hour)."),
        ]
        | None
    ) = None
    public: Public | None = None
    teleconsultation: bool | None = None
    language: Annotated[Language, Documented(description="An ISO 639-1 code, letters in either case.")] | None = None
    # true: only psychologists taking new patients today; false: only those who are not.
    accepting: bool | None = None
    name: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=100),
            # fold() keeps something of the name: a character other than a separator or a combining mark.
            Documented(
                pattern=r"[^\s'’.\p{M}-]",
                description="The start of a first or last name, accents and case ignored.",
            ),
        ]
        | None
    ) = None

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
        return all(check(practice) for check in self.filters(programme_today()))

    def filters(self, today: dt.date) -> list[Callable[[ListedPractice], bool]]:
        """One test per filter given, made once per search (a search tests a few hundred practices)."""
        checks: list[Callable[[ListedPractice], bool]] = []
        if (public := self.public) is not None:
            checks.append(lambda practice: public in practice.publics)
        if (teleconsultation := self.teleconsultation) is not None:
            checks.append(lambda practice: practice.teleconsultation == teleconsultation)
        if (language := self.language) is not None:
            checks.append(lambda practice: language in practice.languages)
        if self.name is not None:
            folded = fold(self.name)
            checks.append(lambda practice: matches_prefix(practice.name_tokens, folded))
        if (accepting := self.accepting) is not None:
            checks.append(
                lambda practice: (
                    accepts_new_patients(practice.accepting_new_patients, practice.full_until, today) == accepting
                )
            )
        return checks

    def fingerprint(self) -> str:
        """What defines the sequence of results; the page size may change between pages."""
        criteria = self.model_dump(mode="json", exclude={"limit", "cursor"})
        criteria["name"] = fold(self.name) if self.name else None
        return hashlib.sha256(json.dumps(criteria, sort_keys=True).encode()).hexdigest()


# What a search shows of a listed practice: its fields but the keys and the folded name, the distance after the name,
# and its availability as of today rather than as set (`full_until` turns it back by itself).
_NOT_SHOWN = frozenset({"partition", "sort_key", "name_tokens", "full_until"})


def _result_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, annotation in get_type_hints(ListedPractice).items():
        if name not in _NOT_SHOWN:
            fields[name] = (annotation, ListedPractice._field_defaults.get(name, ...))
        if name == "name":
            fields["distance_km"] = (float, ...)
    return fields


# Every answer carries every field: the schema says so even of those with a default.
SearchResult = create_model(
    "SearchResult", __config__=ConfigDict(json_schema_serialization_defaults_required=True), **_result_fields()
)


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
    # The items one search may read (about 1 MB, a few Query pages): past them, a search that has not proven its
    # page (a wide radius with filters nothing matches) is refused, saying how far it got, so an anonymous caller
    # cannot make one request read a region's whole directory. Steps are cut to what the budget still allows.
    max_items_read: int = 5000


DEFAULT_TUNING = SearchTuning()

_Rank = tuple[float, str]


def _cursor_position(query: SearchQuery, fingerprint: str, keys: cursors.CursorKeys) -> _Rank | None:
    if query.cursor is None:
        return None
    position = cursors.open_sealed(query.cursor, context=fingerprint, keys=keys)
    try:
        distance, practice_id = float.fromhex(position["d"]), position["id"]
    except (KeyError, TypeError, ValueError):
        raise InvalidCursor("The cursor is invalid.") from None
    if not isinstance(practice_id, str) or not math.isfinite(distance):
        raise InvalidCursor("The cursor is invalid.")
    return distance, practice_id


def _seal(rank: _Rank, fingerprint: str, keys: cursors.CursorKeys) -> str:
    # float.hex keeps the exact distance, so the next page resumes exactly after it.
    position = {"d": rank[0].hex(), "id": rank[1]}
    return cursors.seal(position, context=fingerprint, keys=keys, lifetime=cursors.SEARCH_CURSOR_LIFETIME)


# isinstance on a runtime-checkable Protocol inspects each of its members every time (~10 µs): asked once per type.
@cache
def _type_offers(port_type: type, protocol: type) -> bool:
    return issubclass(port_type, protocol)


def reads_in_batches(port: ListingQueryPort) -> TypeGuard[BatchListingQueryPort]:
    return _type_offers(type(port), BatchListingQueryPort)


def gives_density_hints(port: ListingQueryPort) -> TypeGuard[DensityHintPort]:
    return _type_offers(type(port), DensityHintPort)


def _read(port: ListingQueryPort, ranges: list[KeyRange]) -> list[ListedPractice]:
    if not ranges:
        return []
    if reads_in_batches(port):
        return port.query_ranges(ranges)
    return [item for r in ranges for item in port.query_range(r.partition, r.low, r.high)]


_SHOWN = tuple(name for name in ListedPractice._fields if name not in _NOT_SHOWN)
_shown_values = itemgetter(*(ListedPractice._fields.index(name) for name in _SHOWN))


def _result(distance: float, practice: ListedPractice, today: dt.date) -> dict[str, Any]:
    """A result's fields, validated with the whole page: pydantic validates a dict faster than
    `model_construct` builds a model."""
    fields = dict(zip(_SHOWN, _shown_values(practice), strict=True))
    fields["distance_km"] = round(distance, 3)
    fields["accepting_new_patients"] = accepts_new_patients(practice.accepting_new_patients, practice.full_until, today)
    return fields


class _Results:
    """What a search has found so far: the matches by practice id, the key spans read, and after each step the
    radius proven complete with the number of matches within it."""

    def __init__(self, query: SearchQuery, after: _Rank | None, today: dt.date):
        self.query = query
        self.after = after
        self.distance_to = distances_from(query.lat, query.lon)
        self.filters = query.filters(today)
        self.found: dict[str, tuple[float, ListedPractice]] = {}
        self.done: list[Span] = []
        self.items_read = 0
        self.history: list[tuple[float, int]] = []

    def take(self, batch: list[ListedPractice], spans: list[Span]) -> None:
        self.items_read += len(batch)
        distance_to, radius_km, filters, found = self.distance_to, self.query.radius_km, self.filters, self.found
        for practice in batch:
            distance = distance_to(practice.lat, practice.lon)
            if distance <= radius_km and (not filters or all(check(practice) for check in filters)):
                found[practice.practice_id] = (distance, practice)
        self.done = union(self.done, spans)

    def prove(self, proven_km: float) -> None:
        self.history.append((proven_km, sum(1 for distance, _ in self.found.values() if distance < proven_km)))

    def ranked(self) -> list[tuple[_Rank, ListedPractice]]:
        """The matches after the cursor, nearest first."""
        after = self.after
        return sorted(
            ((distance, practice_id), practice)
            for practice_id, (distance, practice) in self.found.items()
            if after is None or (distance, practice_id) > after
        )

    def before_cursor(self) -> int:
        after = self.after
        if after is None:
            return 0
        return sum(1 for practice_id, (distance, _) in self.found.items() if (distance, practice_id) <= after)


class _StepPlanner:
    """Where each step reads: the first radius from the density hint, then the ranges of each covering."""

    def __init__(self, query: SearchQuery, tuning: SearchTuning):
        self.query = query
        self.tuning = tuning
        self.complete_km = query.radius_km + _RADIUS_SLACK_KM

    def first_target(self, port: ListingQueryPort, after: _Rank | None, wanted: int) -> float:
        query, tuning = self.query, self.tuning
        density = port.density_per_km2(query.lat, query.lon) if gives_density_hints(port) else None
        if density is not None and 0 < density < math.inf:
            first_km = math.sqrt(wanted / (math.pi * density)) * tuning.margin
        else:
            first_km = tuning.first_radius_km * math.sqrt(wanted / 21)
        return math.hypot(after[0], first_km) if after else first_km

    def step(self, target_km: float, results: _Results) -> tuple[float, list[Span]]:
        """The radius this step proves, and the spans not read yet that it reads."""
        tuning = self.tuning
        disk = disk_spans(self.query.lat, self.query.lon, min(target_km, self.complete_km))
        spans = bridge_gaps(
            subtract(disk.spans, results.done),
            budget=tuning.ranges_per_later_step if results.history else tuning.ranges_per_step,
            cheap_gap=_cheap_gap(results.items_read, results.done, tuning),
            max_gap=int(disk.fine_cells * tuning.max_gap_ratio),
        )
        return disk.proven_km, spans


def search_nearest(
    port: ListingQueryPort,
    query: SearchQuery,
    *,
    cursor_keys: cursors.CursorKeys,
    tuning: SearchTuning = DEFAULT_TUNING,
) -> SearchPage:
    """The next page of practices within the radius passing the filters, by distance then practice id.

    Pages chained by `next_cursor` give exactly the sequence one unlimited page would: each step reads the
    cells of a wider disk, until the nearest `limit + 1` matches lie closer than anything not read yet.
    """
    fingerprint = query.fingerprint()
    after = _cursor_position(query, fingerprint, cursor_keys)
    wanted = query.limit + 1  # one more than a page proves whether another page exists
    today = programme_today()
    results = _Results(query, after, today)
    planner = _StepPlanner(query, tuning)
    target_km = planner.first_target(port, after, wanted)
    while True:
        proven_km, spans = planner.step(_affordable(results, target_km, tuning), results)
        results.take(_read(port, [key_range(span) for span in spans]), spans)
        results.prove(proven_km)
        ranked = results.ranked()
        if proven_km > query.radius_km or (len(ranked) >= wanted and ranked[wanted - 1][0][0] < proven_km):
            break
        target_km = _next_target(results.history, wanted + results.before_cursor(), tuning)
    page = ranked[: query.limit]
    next_cursor = _seal(page[-1][0], fingerprint, cursor_keys) if len(ranked) > query.limit else None
    results_page = [_result(rank[0], practice, today) for rank, practice in page]
    return SearchPage.model_validate({"results": results_page, "next_cursor": next_cursor})


def _affordable(results: _Results, target_km: float, tuning: SearchTuning) -> float:
    """The step's radius, cut to what the budget of items still allows at the density read so far (items grow with
    the disk's area). A search whose budget no longer allows a step of at least `min_growth` is refused, saying how
    far it got, rather than crawling on in tiny steps."""
    if not results.history:
        return target_km
    proven_km = results.history[-1][0]
    allowed_km = proven_km * math.sqrt(tuning.max_items_read / max(results.items_read, 1))
    if allowed_km >= proven_km * tuning.min_growth:
        return min(target_km, allowed_km)
    reached = math.floor(min(proven_km, results.query.radius_km) * 10) / 10
    raise SearchTooBroad(
        f"This search would read more than {tuning.max_items_read} listed practices before finding its page: "
        f"fewer than a page of matches lie within {reached} km. Give a smaller radius_km or fewer filters.",
        details=[{"field": "radius_km", "message": f"matches are rare here: try {max(reached, 1.0)} km or less"}],
    )


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
