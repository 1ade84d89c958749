"""Suggesting communes as a patient types: by name prefix (accents, case, hyphens and "st" ignored) or postcode.

Pure: the index is built from a list of places and answers from memory. Names are folded as the directory
folds psychologists' names ("Saint-Étienne" -> "saint etienne"); "st", "ste", "sts" and "stes" stand for
"saint", "sainte", "saints" and "saintes", as on road signs, so "st etienne" finds Saint-Étienne.

Best matches first: the whole name equal to the query, then names starting with it, then names with a later
word starting with it ("havre" finds Le Havre); population breaks ties. A postcode finds the communes it
serves, a municipal arrondissement before its city when the postcode is whole (75011: Paris 11e first).
A name followed by a number ("sainte colombe 33") keeps the communes of that department or postcode prefix.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from msp.directory.names import fold
from msp.documented import Documented

MAX_QUERY_LENGTH = 100
MAX_LIMIT = 20
DEFAULT_LIMIT = 10
# A single digit would match a tenth of France's postcodes.
MIN_POSTCODE_DIGITS = 2
# The communes change once a year, with a new release of the data and of the function: browsers and the CDN
# may keep an answer a day.
PLACES_CACHE_HEADERS = {"Cache-Control": "public, max-age=86400"}
ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
# The ranking's tiers, best first.
EXACT_NAME, NAME_PREFIX, WORD_PREFIX = 0, 1, 2
_AFTER_EVERY_KEY = "\U0010ffff"
_fold = fold.__wrapped__  # the index folds tens of thousands of names once: past the query cache


class Place(NamedTuple):
    insee_code: str
    name: str
    department: str
    postcodes: tuple[str, ...]
    population: int
    lat: float
    lon: float
    # A municipal arrondissement of Paris, Lyon or Marseille (its city is a place too).
    arrondissement: bool


class PlaceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # A letter, or two digits: what _searchable lets through, at the least (a digit with a symbol passes too).
    q: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_QUERY_LENGTH),
        Documented(pattern=r"\p{L}|\p{N}.*\p{N}"),
    ] = Field(description="The start of a commune's name, or of a postcode (at least 2 digits)")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)

    @field_validator("q")
    @classmethod
    def _searchable(cls, q: str) -> str:
        folded = fold(q)
        if not any(char.isalnum() for char in folded):
            raise ValueError("give the start of a commune's name or of a postcode")
        if folded.replace(" ", "").isdigit() and len(folded.replace(" ", "")) < MIN_POSTCODE_DIGITS:
            raise ValueError(f"give at least {MIN_POSTCODE_DIGITS} digits of a postcode")
        return q


class PlaceSuggestion(BaseModel):
    insee_code: str = Field(description="INSEE code of the commune (or municipal arrondissement)")
    name: str
    department: str
    postcodes: list[str]
    population: int
    lat: float = Field(description="Centre point: the town hall")
    lon: float


class PlaceSuggestions(BaseModel):
    places: list[PlaceSuggestion]


def name_variants(folded_query: str) -> list[str]:
    """What the folded query may stand for: abbreviations expanded; the last word, maybe still being typed,
    also as it is ("st" may be the start of "Stains")."""
    *complete, last = folded_query.split(" ")
    head = " ".join(ABBREVIATIONS.get(word, word) for word in complete)
    lasts = [last] + ([ABBREVIATIONS[last]] if last in ABBREVIATIONS else [])
    return [f"{head} {word}" if head else word for word in lasts]


def _is_area_code(token: str) -> bool:
    return token.isdigit() or token in {"2a", "2b"}


def _rank(place: Place) -> tuple[int, str, str]:
    # The most populated first, then by name and code, so that answers never depend on the data's order.
    return (-place.population, place.name, place.insee_code)


def _row(p: Place) -> str:
    fields = [p.insee_code, p.name, p.department, " ".join(p.postcodes), str(p.population), repr(p.lat), repr(p.lon)]
    fields.append("1" if p.arrondissement else "0")
    return "\t".join(fields)


class PlaceIndex:
    """Every place, best-ranked first, and two sorted key lists pointing at them: each suffix of a folded name
    that starts at a word, and each postcode.

    A place's position is its tie-break. Built once from places (`build`, at build time), the index is stored
    as a plain document (`to_document`) that loads without folding or sorting anything (`from_document`).
    Name keys point at `position` when they start the name, at `~position` (negative) when a later word does.
    """

    def __init__(
        self,
        rows: list[str],
        name_keys: list[str],
        name_refs: list[int],
        postcode_keys: list[str],
        postcode_refs: list[int],
    ):
        # A row: code, name, department, postcodes joined by spaces, population, lat, lon and arrondissement
        # (0/1), tab-separated; split only when a query reads it.
        self._rows = rows
        self._name_keys, self._name_refs = name_keys, name_refs
        self._postcode_keys, self._postcode_refs = postcode_keys, postcode_refs

    @classmethod
    def build(cls, places: Iterable[Place]) -> PlaceIndex:
        ranked = sorted(places, key=_rank)
        names: list[tuple[str, int]] = []
        postcodes: list[tuple[str, int]] = []
        for position, place in enumerate(ranked):
            words = _fold(place.name).split(" ")
            names.extend(
                (" ".join(words[start:]), position if start == 0 else ~position) for start in range(len(words))
            )
            postcodes.extend((postcode, position) for postcode in place.postcodes)
        names.sort()
        postcodes.sort()
        return cls(
            [_row(place) for place in ranked],
            [key for key, _ in names],
            [ref for _, ref in names],
            [key for key, _ in postcodes],
            [ref for _, ref in postcodes],
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "places": "\n".join(self._rows),
            "name_keys": "\n".join(self._name_keys),
            "name_refs": self._name_refs,
            "postcode_keys": "\n".join(self._postcode_keys),
            "postcode_refs": self._postcode_refs,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PlaceIndex:
        return cls(
            document["places"].split("\n"),
            document["name_keys"].split("\n"),
            document["name_refs"],
            document["postcode_keys"].split("\n"),
            document["postcode_refs"],
        )

    def __len__(self) -> int:
        return len(self._rows)

    def place(self, position: int) -> Place:
        code, name, department, postcodes, population, lat, lon, arrondissement = self._rows[position].split("\t")
        return Place(
            code,
            name,
            department,
            tuple(postcodes.split(" ")),
            int(population),
            float(lat),
            float(lon),
            arrondissement == "1",
        )

    def suggest(self, query: PlaceQuery) -> list[Place]:
        folded = fold(query.q)
        compact = folded.replace(" ", "")
        tiers = self._by_postcode(compact) if compact.isdigit() else self._by_name(folded)
        best = heapq.nsmallest(query.limit, tiers.items(), key=lambda item: (item[1], item[0]))
        return [self.place(position) for position, _ in best]

    @staticmethod
    def _range(keys: list[str], prefix: str) -> range:
        return range(bisect_left(keys, prefix), bisect_left(keys, prefix + _AFTER_EVERY_KEY))

    def _by_postcode(self, digits: str) -> dict[int, int]:
        tiers: dict[int, int] = {}
        whole = len(digits) == 5
        for index in self._range(self._postcode_keys, digits[:5]):
            position = self._postcode_refs[index]
            # A whole postcode names a district: the arrondissement it serves before its city.
            tier = 0 if whole and self._rows[position].endswith("\t1") else 1
            tiers[position] = min(tier, tiers.get(position, tier))
        return tiers

    def _by_name(self, folded: str) -> dict[int, int]:
        tiers = self._name_tiers(name_variants(folded))
        words = folded.split(" ")
        if len(words) > 1 and _is_area_code(words[-1]):
            # "sainte colombe 33": the name, in that department or postcode area.
            area = words[-1]
            for position, tier in self._name_tiers(name_variants(" ".join(words[:-1]))).items():
                if self._in_area(self.place(position), area):
                    tiers[position] = min(tier, tiers.get(position, tier))
        return tiers

    def _name_tiers(self, variants: Iterable[str]) -> dict[int, int]:
        tiers: dict[int, int] = {}
        for variant in variants:
            for index in self._range(self._name_keys, variant):
                ref = self._name_refs[index]
                if ref < 0:
                    position, tier = ~ref, WORD_PREFIX
                else:
                    position = ref
                    tier = EXACT_NAME if self._name_keys[index] == variant else NAME_PREFIX
                if tier < tiers.get(position, WORD_PREFIX + 1):
                    tiers[position] = tier
        return tiers

    @staticmethod
    def _in_area(place: Place, area: str) -> bool:
        return place.department.lower() == area.zfill(2) or any(code.startswith(area) for code in place.postcodes)


def suggestion(place: Place) -> PlaceSuggestion:
    return PlaceSuggestion(
        insee_code=place.insee_code,
        name=place.name,
        department=place.department,
        postcodes=list(place.postcodes),
        population=place.population,
        lat=place.lat,
        lon=place.lon,
    )


def suggest_places(index: PlaceIndex, query: PlaceQuery) -> PlaceSuggestions:
    """The communes best matching what the patient typed, best first, at most `query.limit`."""
    return PlaceSuggestions(places=[suggestion(place) for place in index.suggest(query)])
