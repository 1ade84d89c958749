"""CachedListings: the search port with the sort-key ranges it read kept in memory for a bounded time.

Freshness contract: a search answers what the directory held at most `max_age` seconds ago (the public
answers' max-age, 60 s: a CDN or browser may keep an answer that long anyway). A practice newly listed or
unlisted appears in, or leaves, search results within `max_age`; it may do so sooner, never later. Within
that window a search in an area searched recently reads nothing from DynamoDB, and its answer is exactly
what an uncached search would have answered when the ranges were read. The public profile is not cached
here: it is read through on every request (always fresh).

Memory is bounded by `max_items`, the number of practices kept over all ranges; the ranges used least
recently are dropped first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING

from msp.directory.cellkeys import KeyRange
from msp.directory.search import BatchListingQueryPort, DensityHintPort
from msp.storage.directory import directory_store

if TYPE_CHECKING:
    from msp.directory.listing import ListedPractice, PublicProfile
    from msp.directory.search import ListingQueryPort

PUBLIC_MAX_AGE = 60  # seconds, as PUBLIC_CACHE_HEADERS' max-age
# About 1.25 kB each in memory (a ListedPractice and its strings, measured): some 250 MB at most of the
# search function's 1024 MB.
MAX_CACHED_PRACTICES = 200_000


RangeKey = tuple[str, str, str]  # (partition, low, high)


class CachedListings:
    """A search port in front of another one (DirectoryStore): query_range(s) answered from memory when read
    less than `max_age` seconds ago, else read again; the density hint and profiles are passed through."""

    def __init__(
        self,
        listings: ListingQueryPort,
        *,
        max_age: float = PUBLIC_MAX_AGE,
        max_items: int = MAX_CACHED_PRACTICES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.listings = listings
        self.max_age = max_age
        self.max_items = max_items
        self.clock = clock
        # (partition, low, high) -> (when read, its practices); least recently used first
        self._ranges: OrderedDict[tuple[str, str, str], tuple[float, list[ListedPractice]]] = OrderedDict()
        self.cached_items = 0
        # Lambda runs one request at a time; the local gateway serves several at once from one process.
        self._lock = threading.Lock()

    def query_range(self, partition: str, low: str, high: str) -> list[ListedPractice]:
        return self.query_ranges([(partition, low, high)])

    def query_ranges(self, ranges: Sequence[KeyRange | tuple[str, str, str]]) -> list[ListedPractice]:
        """Every range's items in the order asked; the ranges not held (or held too long) read in one batch."""
        now = self.clock()
        keys = [(partition, low, high) for partition, low, high in ranges]
        found = self._fresh(dict.fromkeys(keys), now)
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing:
            found |= self._read(missing)
            with self._lock:
                self._keep({key: found[key] for key in missing}, now)
        return [practice for key in keys for practice in found[key]]

    def _fresh(
        self, keys: Iterable[tuple[str, str, str]], now: float
    ) -> dict[tuple[str, str, str], list[ListedPractice]]:
        """The ranges held and read less than max_age ago, marked as just used."""
        found = {}
        with self._lock:
            for key in keys:
                held = self._ranges.get(key)
                if held is not None and now - held[0] < self.max_age:
                    self._ranges.move_to_end(key)
                    found[key] = held[1]
        return found

    def _read(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[ListedPractice]]:
        if not isinstance(self.listings, BatchListingQueryPort) or not _disjoint(keys):
            return {key: self.listings.query_range(*key) for key in keys}
        # One batch (its Queries run concurrently); disjoint ranges tell which range each practice came from.
        by_key: dict[tuple[str, str, str], list[ListedPractice]] = {key: [] for key in keys}
        for practice in self.listings.query_ranges([KeyRange(*key) for key in keys]):
            by_key[next(key for key in keys if _holds(key, practice))].append(practice)
        return by_key

    def _keep(self, read: dict[tuple[str, str, str], list[ListedPractice]], now: float) -> None:
        for key, practices in read.items():
            self._forget(key)
            if len(practices) <= self.max_items:  # a range larger than the whole cache is answered, not kept
                self._ranges[key] = (now, practices)
                self.cached_items += len(practices)
        while self.cached_items > self.max_items:
            self._forget(next(iter(self._ranges)))

    def _forget(self, key: tuple[str, str, str]) -> None:
        held = self._ranges.pop(key, None)
        if held is not None:
            self.cached_items -= len(held[1])

    def density_per_km2(self, lat: float, lon: float) -> float | None:
        return self.listings.density_per_km2(lat, lon) if isinstance(self.listings, DensityHintPort) else None

    def profile(self, psychologist_id: str) -> PublicProfile | None:
        """Read through, never cached: a profile is always the stored one."""
        return self.listings.profile(psychologist_id)  # type: ignore[attr-defined]


def _disjoint(keys: list[tuple[str, str, str]]) -> bool:
    ordered = sorted(keys)
    return all(a[0] != b[0] or a[2] < b[1] for a, b in pairwise(ordered))


def _holds(key: tuple[str, str, str], practice: ListedPractice) -> bool:
    partition, low, high = key
    return practice.partition == partition and low <= practice.sort_key <= high


@cache
def cached_directory_store() -> CachedListings:
    """The search's store in a warm function, reused across invocations (one cache per function instance)."""
    return CachedListings(directory_store())
