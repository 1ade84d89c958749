"""The search's bounded-staleness cache: warm searches read nothing, answers are at most max-age old,
memory stays bounded, and profiles are read through. The clock is injected: nothing sleeps."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msp import cursors
from msp.directory import cellkeys, covering, spherical
from msp.directory.cellkeys import Span, descendant_span, key_range, ordinal
from msp.directory.search import SearchQuery, search_nearest
from msp.storage.directory import directory_item, practice_from_item
from msp.storage.directory_cache import PRACTICE_BYTES, PUBLIC_MAX_AGE, CachedListings

from .directory_fakes import KEYS, BatchListings, InMemoryListings, brute_force, listed

PARIS = (48.8566, 2.3522)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _practices(count: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    return [
        listed(f"psy{index}-1", PARIS[0] + rng.gauss(0, 0.02), PARIS[1] + rng.gauss(0, 0.03)) for index in range(count)
    ]


def _search(port, **query) -> list[str]:
    page = search_nearest(port, SearchQuery(lat=PARIS[0], lon=PARIS[1], **query), cursor_keys=KEYS)
    return [result.practice_id for result in page.results]


def _brute_force(store, **query) -> list[str]:
    return [
        practice_id for practice_id, _ in brute_force(store.all(), SearchQuery(lat=PARIS[0], lon=PARIS[1], **query))
    ]


@pytest.mark.parametrize("backing", [InMemoryListings, BatchListings])
def test_a_warm_search_within_max_age_reads_nothing_and_answers_the_same(backing):
    store = backing(_practices(300))
    clock = Clock()
    cached = CachedListings(store, clock=clock)
    cold = _search(cached, radius_km=5, limit=20)
    assert store.queries > 0
    assert cold == _brute_force(store, radius_km=5)[:20]
    store.reset_counts()
    clock.now += PUBLIC_MAX_AGE - 1
    assert _search(cached, radius_km=5, limit=20) == cold
    assert store.queries == 0


def test_after_max_age_the_ranges_are_read_again():
    store = BatchListings(_practices(300))
    clock = Clock()
    cached = CachedListings(store, clock=clock)
    _search(cached, radius_km=5, limit=20)
    first_reads = store.queries
    store.reset_counts()
    clock.now += PUBLIC_MAX_AGE
    _search(cached, radius_km=5, limit=20)
    assert store.queries == first_reads


def test_a_listing_change_is_seen_within_max_age_and_possibly_not_before():
    practices = _practices(200)
    store = BatchListings(practices)
    clock = Clock()
    cached = CachedListings(store, clock=clock)
    before = _search(cached, radius_km=3, limit=50)
    nearest_id = before[0]
    nearest = next(p for p in practices if p.practice_id == nearest_id)
    newcomer = listed("newcomer-1", *PARIS)
    store.remove(nearest)
    store.put(newcomer)

    clock.now += PUBLIC_MAX_AGE / 2
    stale = _search(cached, radius_km=3, limit=50)
    assert stale == before  # the contract allows it: the ranges were read less than max-age ago

    clock.now += PUBLIC_MAX_AGE / 2
    fresh = _search(cached, radius_km=3, limit=50)
    assert fresh[0] == "newcomer-1"
    assert nearest_id not in fresh
    assert fresh == _brute_force(store, radius_km=3)[:50]


def test_memory_stays_within_the_bound_least_recently_used_ranges_dropped_first():
    store = BatchListings(_practices(3000))
    clock = Clock()
    cached = CachedListings(store, clock=clock, max_items=1500)
    items_read = 0
    for step in range(30):
        items_read += store.items_read
        store.reset_counts()
        lat = PARIS[0] + (step % 6) * 0.01
        lon = PARIS[1] + (step // 6) * 0.01
        page = search_nearest(cached, SearchQuery(lat=lat, lon=lon, radius_km=4, limit=10), cursor_keys=KEYS)
        assert len(page.results) == 10
        assert cached.cached_items <= 1500
        assert cached.cached_items == sum(len(run.practices) for runs in cached._runs.values() for run in runs)
    # The search just answered used its ranges last: when they fit, searching it again reads nothing.
    last_ranges = list(store.ranges)
    assert sum(len(store.query_range(*key_range)) for key_range in last_ranges) <= 1500
    store.reset_counts()
    search_nearest(cached, SearchQuery(lat=lat, lon=lon, radius_km=4, limit=10), cursor_keys=KEYS)
    assert store.queries == 0


def test_a_range_larger_than_the_whole_cache_is_answered_not_kept():
    store = InMemoryListings(_practices(50))
    partition = store.all()[0].partition
    cached = CachedListings(store, clock=Clock(), max_items=10)
    everything = cached.query_range(partition, "", "~")
    assert everything == store.query_range(partition, "", "~")
    assert cached.cached_items == 0


def test_overlapping_ranges_in_one_batch_each_get_their_own_items():
    store = BatchListings(_practices(50))
    partition = store.all()[0].partition
    cached = CachedListings(store, clock=Clock())
    keys = sorted(p.sort_key for p in store.all() if p.partition == partition)
    wide, narrow = (partition, keys[0], keys[-1]), (partition, keys[1], keys[2])
    got = cached.query_ranges([wide, narrow])
    assert got == store.query_range(*wide) + store.query_range(*narrow)
    store.reset_counts()
    assert cached.query_range(*narrow) == store.query_range(*narrow)[:2]


class ProfileStore(BatchListings):
    def __init__(self) -> None:
        super().__init__()
        self.profiles: dict[str, str] = {}

    def profile(self, psychologist_id: str):
        return self.profiles.get(psychologist_id)


def test_the_profile_is_read_through_always_fresh():
    store = ProfileStore()
    cached = CachedListings(store, clock=Clock())
    store.profiles["psy1"] = "before"
    assert cached.profile("psy1") == "before"
    store.profiles["psy1"] = "after"
    assert cached.profile("psy1") == "after"
    del store.profiles["psy1"]
    assert cached.profile("psy1") is None


def test_the_density_hint_is_passed_through_when_the_store_has_one():
    assert CachedListings(InMemoryListings(), clock=Clock()).density_per_km2(*PARIS) is None


def test_a_search_near_one_just_answered_reads_nothing():
    store = BatchListings(_practices(600))
    cached = CachedListings(store, clock=Clock())
    _search(cached, radius_km=5, limit=50)
    store.reset_counts()
    # A smaller page from a point ~150 m away needs a smaller disk, inside what the first search read.
    query = SearchQuery(lat=PARIS[0] + 0.001, lon=PARIS[1] + 0.0015, radius_km=5, limit=5)
    page = search_nearest(cached, query, cursor_keys=KEYS)
    assert store.queries == 0
    assert [result.practice_id for result in page.results] == [pid for pid, _ in brute_force(store.all(), query)][:5]


def _partition_thirds(store: InMemoryListings) -> tuple[str, list[Span]]:
    """The most populated partition of the store and three spans of its fine cells, each holding practices."""
    sizes = store.partition_sizes()
    partition = max(sizes, key=sizes.__getitem__)
    cells = sorted({ordinal(int(p.sort_key[:16], 16)) for p in store.all() if p.partition == partition})
    first, last = descendant_span(partition)
    one, two = cells[len(cells) // 3], cells[2 * len(cells) // 3]
    return partition, [Span(partition, first, one - 1), Span(partition, one, two - 1), Span(partition, two, last)]


def test_a_range_read_again_replaces_what_it_overlaps_and_each_part_ages_on_its_own():
    store = BatchListings(_practices(400))
    clock = Clock()
    cached = CachedListings(store, clock=clock)
    partition, (a, b, c) = _partition_thirds(store)
    ab, bc = key_range(Span(partition, a.first, b.last)), key_range(Span(partition, b.first, c.last))
    read_first = cached.query_range(*ab)  # at 1000
    leaving = cached.query_range(*key_range(b))[0]  # b answered from what ab read
    assert store.queries == 1
    store.remove(leaving)

    clock.now += 30
    # b and c together are not all held: read again, whole, and what b held before is replaced.
    assert cached.query_range(*bc) == store.query_range(*bc)
    store.reset_counts()
    assert cached.query_range(*ab) == [practice for practice in read_first if practice != leaving]
    assert store.queries == 0

    clock.now += PUBLIC_MAX_AGE - 20  # a was read 70 s ago, b and c 40 s ago
    cached.query_range(*bc)
    assert store.queries == 0
    cached.query_range(*key_range(a))
    assert store.queries == 1


# A directory for comparing warm and cold searches: a dense centre, suburbs, villages, and shared points.
def _directory(seed: int = 3) -> list:
    rng = random.Random(seed)
    practices = []
    for index in range(1500):
        spread = rng.choice([0.005, 0.02, 0.08, 0.4])
        lat, lon = PARIS[0] + rng.gauss(0, spread), PARIS[1] + rng.gauss(0, spread * 1.5)
        if index % 50 == 0 and practices:  # several practices at one address
            lat, lon = practices[-1].lat, practices[-1].lon
        practices.append(
            listed(
                f"psy{index}-{rng.randint(1, 3)}",
                lat,
                lon,
                languages=rng.sample(["fr", "en", "de"], rng.randint(1, 2)),
                publics=rng.sample(["enfants", "adolescents", "adultes"], rng.randint(1, 3)),
                teleconsultation=rng.random() < 0.5,
            )
        )
    return practices


DIRECTORY = _directory()


@st.composite
def nearby_searches(draw):
    lat = PARIS[0] + draw(st.floats(-0.3, 0.3))
    lon = PARIS[1] + draw(st.floats(-0.45, 0.45))
    if draw(st.booleans()):  # points that repeat, as a commune's centre does
        lat, lon = draw(st.sampled_from([PARIS, (48.9, 2.3), (48.7, 2.5)]))
    return SearchQuery(
        lat=lat,
        lon=lon,
        radius_km=draw(st.sampled_from([1, 5, 10, 30])),
        limit=draw(st.sampled_from([3, 20, 50])),
        language=draw(st.sampled_from([None, None, "en", "de"])),
        teleconsultation=draw(st.sampled_from([None, None, True])),
        public=draw(st.sampled_from([None, None, "enfants"])),
    )


COLD = BatchListings(DIRECTORY)
WARM = [
    CachedListings(BatchListings(DIRECTORY), clock=Clock()),
    CachedListings(BatchListings(DIRECTORY), clock=Clock(), max_items=300),
]


def _answer(port, query: SearchQuery) -> tuple[list, dict | None, str | None]:
    """A page's results, the position its cursor carries (its expiry depends on the second it was made), and the
    cursor itself, to ask for the next page."""
    page = search_nearest(port, query, cursor_keys=KEYS)
    cursor = page.next_cursor
    position = None if cursor is None else cursors.open_sealed(cursor, context=query.fingerprint(), keys=KEYS)
    return [result.model_dump() for result in page.results], position, cursor


@settings(max_examples=40, deadline=None)
@given(st.lists(nearby_searches(), min_size=1, max_size=4))
def test_warm_searches_answer_exactly_as_cold_ones_and_an_empty_cache_reads_as_no_cache(queries):
    """Caches kept across examples grow warm (one of them small enough to drop ranges all along): every page,
    cursor position and end of the sequence equals the uncached search's. From an empty cache, a page reads
    exactly the ranges the uncached search reads."""
    for query in queries:
        pages = 0
        while query is not None and pages < 3:
            COLD.reset_counts()
            results, position, cursor = _answer(COLD, query)
            for warm in WARM:
                assert _answer(warm, query)[:2] == (results, position)
            empty = BatchListings(DIRECTORY)
            assert _answer(CachedListings(empty, clock=Clock()), query)[:2] == (results, position)
            assert empty.ranges == COLD.ranges
            query = query.model_copy(update={"cursor": cursor}) if cursor else None
            pages += 1


class DecodingListings(BatchListings):
    """Answers with practices decoded from their stored form, new objects on every read, as DynamoDB's do."""

    def query_range(self, partition: str, low: str, high: str) -> list:
        found = []
        for practice in super().query_range(partition, low, high):
            stored = directory_item(practice)
            found.append(
                practice_from_item(partition, {"sk": {"S": stored["sk"]}, "listing": {"S": stored["listing"]}})
            )
        return found


def test_the_memory_held_stays_within_its_bound():
    """What the cache holds, measured with tracemalloc, is at most PRACTICE_BYTES per practice kept, and it keeps
    at most max_items practices: the memory bound MAX_CACHED_PRACTICES is sized with."""
    rng = random.Random(5)
    store = DecodingListings(
        listed(f"psy{index}-1", 46 + rng.uniform(-2, 2), 2.5 + rng.uniform(-3, 3)) for index in range(4000)
    )
    points = [(46 + rng.uniform(-2, 2), 2.5 + rng.uniform(-3, 3)) for _ in range(30)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cached = CachedListings(store, clock=Clock(), max_items=1000)
        for lat, lon in points:
            search_nearest(cached, SearchQuery(lat=lat, lon=lon, radius_km=30, limit=50), cursor_keys=KEYS)
            assert cached.cached_items <= 1000
        # Not the cache's: the store's record of what it was asked, the search's memos of coverings and cells
        # (bounded on their own).
        store.reset_counts()
        for memo in (covering.disk_spans, cellkeys.key_range, cellkeys.span_of, spherical._edges):
            memo.cache_clear()
        spherical._circumradius_km.cache_clear()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cached.cached_items > 500  # the bound was reached: practices were dropped to keep within it
    assert held <= cached.cached_items * PRACTICE_BYTES
