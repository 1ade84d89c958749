"""Exactness of the nearest-practice search: page by page, it equals a brute-force haversine scan."""

from __future__ import annotations

import math
import random

import h3
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from msp.cursors import CursorKeys
from msp.directory.search import SearchQuery, SearchTuning, search_nearest
from msp.directory.spherical import haversine_km
from msp.errors import InvalidCursor, SearchTooBroad
from msp.http_errors import answer_for

from .directory_fakes import (
    KEYS,
    BatchListings,
    HintedListings,
    InMemoryListings,
    all_pages,
    brute_force,
    listed,
)
from .strategies import AREAS

NAMES = [("Camille", "Martin"), ("Hélène", "Dupré"), ("Jean-Pierre", "Le Gall"), ("Zoé", "D'Arc"), ("Émile", "Müller")]
LANGUAGES = ["fr", "en", "ar", "es"]
PUBLICS = ["enfants", "adolescents", "adultes"]
# Areas to search in, and how far (degrees) clusters spread in each kind of practice set.
SPREADS = {"duplicates": 0.0, "street": 0.0005, "district": 0.005, "town": 0.03, "county": 0.3}


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _border_points(rng: random.Random, lat: float, lon: float) -> list[tuple[float, float]]:
    """Vertices and edge midpoints of cells around a point, at a random resolution."""
    resolution = rng.randint(4, 10)
    cells = h3.grid_disk(h3.latlng_to_cell(lat, lon, resolution), 1)
    points = []
    for cell in cells:
        boundary = h3.cell_to_boundary(cell)
        points += boundary
        edges = zip(boundary, boundary[1:] + boundary[:1], strict=True)
        points += [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in edges]
    return points


@st.composite
def directories(draw):
    """A random set of listed practices: clustered, sparse, on cell borders, or all at once."""
    area = draw(st.sampled_from(sorted(AREAS)))
    lat_min, lat_max, lon_min, lon_max = AREAS[area]
    kinds = draw(st.sets(st.sampled_from(["clusters", "sparse", "borders"]), min_size=1))
    spread = SPREADS[draw(st.sampled_from(sorted(SPREADS)))]
    size = draw(st.integers(1, 70))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    centres = [(rng.uniform(lat_min, lat_max), rng.uniform(lon_min, lon_max)) for _ in range(rng.randint(1, 4))]
    points: list[tuple[float, float]] = []
    while len(points) < size:
        kind = rng.choice(sorted(kinds))
        if kind == "sparse":
            points.append((rng.uniform(lat_min, lat_max), rng.uniform(lon_min, lon_max)))
        elif kind == "clusters":
            lat, lon = rng.choice(centres)
            points.append((lat + rng.gauss(0, spread), lon + rng.gauss(0, spread)))
        else:
            points += rng.sample(_border_points(rng, *rng.choice(centres)), 3)
    practices = []
    for index, (lat, lon) in enumerate(points[:size]):
        first, last = rng.choice(NAMES)
        practices.append(
            listed(
                f"psy{rng.randrange(1000)}x{index}-{rng.randint(1, 3)}",
                _clamp(lat, -89, 89),
                lon,
                first_name=first,
                last_name=last,
                languages=rng.sample(LANGUAGES, rng.randint(1, 3)),
                publics=rng.sample(PUBLICS, rng.randint(1, 3)),
                teleconsultation=rng.random() < 0.5,
            )
        )
    return area, centres, practices


@st.composite
def searches(draw, area: str, centres: list[tuple[float, float]], practices: list):
    lat_min, lat_max, lon_min, lon_max = AREAS[area]
    where = draw(st.sampled_from(["anywhere", "at a practice", "near a centre", "on a vertex"]))
    if where == "at a practice" and practices:
        practice = draw(st.sampled_from(practices))
        lat, lon = practice.lat, practice.lon
    elif where == "near a centre":
        lat, lon = draw(st.sampled_from(centres))
        lat += draw(st.floats(-0.01, 0.01))
        lon += draw(st.floats(-0.01, 0.01))
    elif where == "on a vertex":
        lat, lon = draw(st.sampled_from(centres))
        cell = h3.latlng_to_cell(lat, lon, draw(st.integers(4, 10)))
        lat, lon = draw(st.sampled_from(h3.cell_to_boundary(cell)))
    else:
        lat, lon = draw(st.floats(lat_min, lat_max)), draw(st.floats(lon_min, lon_max))
    lat, lon = _clamp(lat, lat_min, lat_max), _clamp(lon, lon_min, lon_max)
    distances = sorted(haversine_km(lat, lon, p.lat, p.lon) for p in practices)
    how_far = draw(st.sampled_from(["kth practice", "kth practice", "small", "large", "largest"]))
    if how_far == "kth practice" and distances and 0 < distances[-1] <= 100:
        # Exactly the distance of a practice, which is then within the radius (the boundary case).
        radius = draw(st.sampled_from([d for d in distances if 0 < d <= 100]))
    elif how_far == "small":
        radius = draw(st.floats(0.01, 2))
    elif how_far == "largest":
        radius = 100.0
    else:
        radius = draw(st.floats(2, 100))
    unless_often_none = st.none() | st.none() | st.none()
    return SearchQuery(
        lat=lat,
        lon=lon,
        radius_km=radius,
        limit=draw(st.integers(1, 50) | st.integers(1, 5)),
        public=draw(unless_often_none | st.sampled_from(PUBLICS)),
        teleconsultation=draw(unless_often_none | st.booleans()),
        language=draw(unless_often_none | st.sampled_from(LANGUAGES)),
        name=draw(
            unless_often_none
            | st.sampled_from(["Ca", "MARTIN", "hélè", "le g", "zoe d", "muller", "Émile", "jean-p", "x"])
        ),
    )


def _assert_pages_equal_brute_force(port, query: SearchQuery, *, max_pages: int = 12, **options) -> None:
    expected = brute_force(port.all(), query)
    pages = all_pages(port, query, max_pages=max_pages, **options)
    got = [(r.practice_id, r.distance_km) for page in pages for r in page.results]
    event(f"pages: {min(len(pages), 3)}{'+' if len(pages) >= 3 else ''}")
    event(f"results: {'none' if not got else 'under 10' if len(got) < 10 else '10 or more'}")
    for page in pages[:-1]:
        assert len(page.results) == query.limit
    assert len(pages[-1].results) <= query.limit
    if pages[-1].next_cursor is None:
        assert len(got) == len(expected)
    else:
        assert len(got) == len(pages) * query.limit < len(expected)
    assert [practice_id for practice_id, _ in got] == [practice_id for practice_id, _ in expected[: len(got)]]
    assert all(math.isclose(a, round(b, 3)) for (_, a), (_, b) in zip(got, expected, strict=False))
    assert len({practice_id for practice_id, _ in got}) == len(got)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_pages_equal_a_brute_force_scan(data):
    area, centres, practices = data.draw(directories())
    port = InMemoryListings(practices)
    query = data.draw(searches(area, centres, practices))
    _assert_pages_equal_brute_force(port, query)


@st.composite
def tunings(draw):
    return SearchTuning(
        first_radius_km=draw(st.floats(0.001, 50)),
        ranges_per_step=draw(st.integers(1, 8)),
        ranges_per_later_step=draw(st.integers(1, 8)),
        max_gap_ratio=draw(st.floats(0, 100)),
        request_cost_items=draw(st.floats(0, 10_000)),
        margin=draw(st.floats(1, 3)),
        min_growth=draw(st.floats(1.1, 2)),
        max_growth=draw(st.floats(2, 20)),
        min_exponent=draw(st.floats(0.3, 2)),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_exactness_does_not_depend_on_tuning_hints_or_batching(data):
    area, centres, practices = data.draw(directories())
    hint = data.draw(st.one_of(st.none(), st.floats(0, 1e6), st.just(math.nan), st.just(-1.0)))
    port = data.draw(
        st.sampled_from([HintedListings(practices, hint=hint), BatchListings(practices), InMemoryListings(practices)])
    )
    query = data.draw(searches(area, centres, practices))
    _assert_pages_equal_brute_force(port, query, max_pages=6, tuning=data.draw(tunings()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_the_page_size_may_change_between_pages(data):
    area, centres, practices = data.draw(directories())
    port = InMemoryListings(practices)
    query = data.draw(searches(area, centres, practices))
    expected = [practice_id for practice_id, _ in brute_force(practices, query)]
    got: list[str] = []
    cursor = None
    for _ in range(8):
        limit = data.draw(st.integers(1, 50))
        page = search_nearest(port, query.model_copy(update={"cursor": cursor, "limit": limit}), cursor_keys=KEYS)
        got += [r.practice_id for r in page.results]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == expected[: len(got)]
    assert cursor is not None or len(got) == len(expected)


def _paris(count: int = 600, seed: int = 1) -> list:
    rng = random.Random(seed)
    return [
        listed(f"psy{i}-1", 48.8566 + rng.uniform(-0.02, 0.02), 2.3522 + rng.uniform(-0.03, 0.03)) for i in range(count)
    ]


def test_a_tampered_cursor_is_refused():
    port = InMemoryListings(_paris())
    query = SearchQuery(lat=48.8566, lon=2.3522, limit=5)
    cursor = search_nearest(port, query, cursor_keys=KEYS).next_cursor
    assert cursor
    payload, mac = cursor.split(".")
    for forged in (f"{payload}x.{mac}", f"{payload}.{mac[::-1]}", f"{payload[:-2]}.{mac}", "garbage"):
        with pytest.raises(InvalidCursor) as refused:
            search_nearest(port, query.model_copy(update={"cursor": forged}), cursor_keys=KEYS)
        assert answer_for(refused.value).code == "invalid_cursor"


def test_a_cursor_from_another_search_is_refused():
    port = InMemoryListings(_paris())
    query = SearchQuery(lat=48.8566, lon=2.3522, limit=5)
    cursor = search_nearest(port, query, cursor_keys=KEYS).next_cursor
    for other in (
        {"lat": 48.857},
        {"radius_km": 5},
        {"language": "en"},
        {"public": "enfants"},
        {"teleconsultation": True},
        {"name": "cam"},
    ):
        with pytest.raises(InvalidCursor):
            search_nearest(port, query.model_copy(update={**other, "cursor": cursor}), cursor_keys=KEYS)
    with pytest.raises(InvalidCursor):
        search_nearest(port, query.model_copy(update={"cursor": cursor}), cursor_keys=CursorKeys(b"x" * 32))


def test_an_accent_or_case_variant_of_the_name_keeps_the_cursor_valid():
    port = InMemoryListings(_paris())
    query = SearchQuery(lat=48.8566, lon=2.3522, limit=5, name="Cam")
    cursor = search_nearest(port, query, cursor_keys=KEYS).next_cursor
    page = search_nearest(port, query.model_copy(update={"name": "cAM", "cursor": cursor}), cursor_keys=KEYS)
    assert len(page.results) == 5


def test_results_show_only_public_fields():
    page = search_nearest(InMemoryListings(_paris(30)), SearchQuery(lat=48.8566, lon=2.3522), cursor_keys=KEYS)
    assert set(page.results[0].model_dump()) == {
        "psychologist_id",
        "practice_id",
        "name",
        "distance_km",
        "address",
        "postcode",
        "city",
        "department",
        "lat",
        "lon",
        "phone",
        "email",
        "website",
        "languages",
        "publics",
        "teleconsultation",
        "accepting_new_patients",
    }


def test_an_empty_directory_answers_an_empty_last_page():
    page = search_nearest(InMemoryListings(), SearchQuery(lat=-12.78, lon=45.22, radius_km=100), cursor_keys=KEYS)
    assert page.results == [] and page.next_cursor is None


def test_a_batch_port_gets_each_step_in_one_call():
    port = BatchListings(_paris())
    search_nearest(port, SearchQuery(lat=48.8566, lon=2.3522), cursor_keys=KEYS)
    assert port.batches and sum(port.batches) == port.queries


def _central_paris(count: int, seed: int = 7) -> list:
    """Central Paris as dense as a national set in proportion to population: ~30 practices per km²."""
    rng = random.Random(seed)
    practices = []
    for i in range(count):
        distance, bearing = 5.8 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        lat = 48.8566 + distance * math.sin(bearing) / 111.2
        lon = 2.3522 + distance * math.cos(bearing) / (111.2 * math.cos(math.radians(48.8566)))
        practices.append(listed(f"psy{i}-1", lat, lon, teleconsultation=rng.random() < 0.5))
    return practices


@pytest.mark.parametrize("port_type", [InMemoryListings, HintedListings])
def test_a_paris_centre_search_reads_few_ranges_and_items(port_type):
    port = port_type(_central_paris(3200))
    if isinstance(port, HintedListings):
        port.hint = 30.0
    rng = random.Random(3)
    queries, ratios = [], []
    for _ in range(60):
        port.reset_counts()
        query = SearchQuery(lat=48.8566 + rng.uniform(-0.02, 0.02), lon=2.3522 + rng.uniform(-0.03, 0.03))
        page = search_nearest(port, query, cursor_keys=KEYS)
        assert len(page.results) == 20
        queries.append(port.queries)
        ratios.append(port.items_read / len(page.results))
    queries.sort()
    ratios.sort()
    assert queries[len(queries) // 2] <= 5 and queries[int(len(queries) * 0.95)] <= 8
    assert ratios[len(ratios) // 2] <= 6


def test_a_practice_is_found_from_its_own_coordinates():
    """The coarse cell comes from the fine cell, so even a point on a coarse border is where search looks."""
    rng = random.Random(11)
    for _ in range(50):
        cell = h3.latlng_to_cell(rng.uniform(42, 50), rng.uniform(-1, 7), 4)
        lat, lon = rng.choice(h3.cell_to_boundary(cell))
        port = InMemoryListings([listed("psy-1", lat, lon)])
        page = search_nearest(port, SearchQuery(lat=lat, lon=lon, radius_km=0.01), cursor_keys=KEYS)
        assert [r.practice_id for r in page.results] == ["psy-1"]


def test_ties_in_distance_are_ordered_by_practice_id():
    practices = [listed(pid, 45.764, 4.8357) for pid in ("b-1", "a-2", "a-10", "c-1")]
    port = InMemoryListings(practices)
    pages = all_pages(port, SearchQuery(lat=45.77, lon=4.84, limit=1))
    assert [r.practice_id for page in pages for r in page.results] == ["a-10", "a-2", "b-1", "c-1"]


def test_a_search_that_would_read_past_its_budget_is_refused_saying_how_far_it_got():
    """A name nothing matches, in a dense city, at the widest radius: the search stops near its budget."""
    port = InMemoryListings(_central_paris(3000))
    tuning = SearchTuning(max_items_read=400)
    query = SearchQuery(lat=48.8566, lon=2.3522, radius_km=100, name="Zygomar")
    with pytest.raises(SearchTooBroad) as refused:
        search_nearest(port, query, cursor_keys=KEYS, tuning=tuning)
    assert answer_for(refused.value).code == "search_too_broad"
    assert refused.value.details[0]["field"] == "radius_km" and "km" in refused.value.message
    # It read about its budget, not far past it (each step is cut to what the budget allows at the density read).
    assert tuning.max_items_read / 2 <= port.items_read <= 2 * tuning.max_items_read
    # The same search with a radius its budget covers answers: nobody of that name within 1 km.
    page = search_nearest(port, query.model_copy(update={"radius_km": 1}), cursor_keys=KEYS, tuning=tuning)
    assert page.results == []


def test_the_default_budget_leaves_a_city_search_with_filters_alone():
    port = InMemoryListings(_central_paris(3000))
    query = SearchQuery(lat=48.8566, lon=2.3522, radius_km=10, teleconsultation=True, limit=50)
    page = search_nearest(port, query, cursor_keys=KEYS)
    assert len(page.results) == 50 and port.items_read < SearchTuning().max_items_read
