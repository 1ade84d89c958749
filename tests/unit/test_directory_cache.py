"""The search's bounded-staleness cache: warm searches read nothing, answers are at most max-age old,
memory stays bounded, and profiles are read through. The clock is injected: nothing sleeps."""

from __future__ import annotations

import random

import pytest

from msp.directory.search import SearchQuery, search_nearest
from msp.storage.directory_cache import PUBLIC_MAX_AGE, CachedListings

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
        assert cached.cached_items == sum(len(practices) for _, practices in cached._ranges.values())
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
