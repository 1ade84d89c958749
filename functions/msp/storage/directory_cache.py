"""CachedListings: the search port with the directory it read kept in memory for a bounded time.

Freshness contract: every part of the directory a search answers from was read from DynamoDB less than
`max_age` seconds ago (the public answers' max-age, 60 s: a CDN or browser may keep an answer that long
anyway). A practice newly listed or unlisted appears in, or leaves, search results within `max_age`; it may
do so sooner, never later. Within that window a search whose cells were all read recently (the same search
again, most searches a few hundred metres from one just made) reads nothing from DynamoDB. The public profile
is not cached here: it is read through on every request (always fresh).

What is kept, per partition (coarse cell): runs of fine cells read together, each with its practices in
sort-key order, so any range within what was read is answered by slicing, whichever search read it. A range
read again replaces what it overlaps (the newer read wins). Memory is bounded by `max_items`, the number of
practices kept; the runs used least recently are dropped first.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from itertools import pairwise
from typing import TYPE_CHECKING

from msp.directory.cellkeys import KeyRange, Span, span_of
from msp.directory.search import gives_density_hints, reads_in_batches
from msp.storage.directory import directory_store

if TYPE_CHECKING:
    from msp.directory.listing import ListedPractice, PublicProfile
    from msp.directory.search import ListingQueryPort

PUBLIC_MAX_AGE = 60  # seconds, as PUBLIC_CACHE_HEADERS' max-age
# What a practice kept costs at most in memory: its ListedPractice, strings and place in the cache (1.2 kB on
# make bench's data, measured with tracemalloc; tests check the bound). 200,000 of them: 300 MB at most of the
# search function's 1024 MB.
PRACTICE_BYTES = 1_500
MAX_CACHED_PRACTICES = 200_000
# Density hints kept by point (a few dozen bytes each): the page searches from a commune's centre.
_HINTS_KEPT = 4096

RangeKey = tuple[str, str, str]  # (partition, low, high)


class _Run:
    """The practices of fine cells `first`..`last` (ordinals) of one partition as read at `read_at`,
    by sort key."""

    __slots__ = ("first", "keys", "last", "partition", "practices", "read_at")

    def __init__(self, span: Span, read_at: float, practices: list[ListedPractice]):
        self.partition, self.first, self.last = span
        self.read_at = read_at
        self.practices = sorted(practices, key=_sort_key)
        self.keys = [practice.sort_key for practice in self.practices]

    def between(self, low: str, high: str) -> list[ListedPractice]:
        return self.practices[bisect.bisect_left(self.keys, low) : bisect.bisect_right(self.keys, high)]

    def outside(self, span: Span, low: str, high: str) -> list[_Run]:
        """What is left of this run once `span` (keys `low`..`high`) is read again: up to two runs."""
        pieces = []
        if self.first < span.first:
            kept = self.practices[: bisect.bisect_left(self.keys, low)]
            pieces.append(_Run(Span(self.partition, self.first, span.first - 1), self.read_at, kept))
        if self.last > span.last:
            kept = self.practices[bisect.bisect_right(self.keys, high) :]
            pieces.append(_Run(Span(self.partition, span.last + 1, self.last), self.read_at, kept))
        return pieces


def _sort_key(practice: ListedPractice) -> str:
    return practice.sort_key


class CachedListings:
    """A search port in front of another one (DirectoryStore): query_range(s) answered from memory when what
    they ask was read less than `max_age` seconds ago, else read again; the density hint is kept as long, per
    point; profiles are passed through."""

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
        self._runs: dict[str, list[_Run]] = {}  # partition -> its runs, disjoint, by first cell
        self._recent: OrderedDict[_Run, None] = OrderedDict()  # every run, least recently used first
        self._hints: OrderedDict[tuple[float, float], tuple[float, float | None]] = OrderedDict()
        self.cached_items = 0
        # Lambda runs one request at a time; the local gateway serves several at once from one process.
        self._lock = threading.Lock()

    def query_range(self, partition: str, low: str, high: str) -> list[ListedPractice]:
        return self.query_ranges([KeyRange(partition, low, high)])

    def query_ranges(self, ranges: Sequence[KeyRange | RangeKey]) -> list[ListedPractice]:
        """Every range's items in the order asked; the ranges not held (or held too long) read in one batch."""
        now = self.clock()
        keys = [(partition, low, high) for partition, low, high in ranges]
        found: dict[RangeKey, list[ListedPractice]] = {}
        with self._lock:
            for key in keys:
                held = self._held(key, now)
                if held is not None:
                    found[key] = held
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing:
            read = self._read(missing)
            with self._lock:
                for key, practices in read.items():
                    self._keep(key, practices, now)
                self._evict()
            found |= read
        return [practice for key in keys for practice in found[key]]

    def _held(self, key: RangeKey, now: float) -> list[ListedPractice] | None:
        """The range's practices if runs read less than max_age ago hold all its cells, marking them used."""
        span = span_of(*key)
        if span is None:
            return None
        answer: list[ListedPractice] = []
        used: list[_Run] = []
        next_cell = span.first
        for run in self._overlapping(span):
            if run.first > next_cell or now - run.read_at >= self.max_age:
                return None
            answer += run.between(key[1], key[2])
            used.append(run)
            next_cell = run.last + 1
        if next_cell <= span.last:
            return None
        for run in used:
            self._recent.move_to_end(run)
        return answer

    def _overlapping(self, span: Span) -> Iterator[_Run]:
        runs = self._runs.get(span.partition, [])
        # The last run starting before the span may reach into it.
        at = max(bisect.bisect_right(runs, span.first, key=_first) - 1, 0)
        for run in runs[at:]:
            if run.first > span.last:
                break
            if run.last >= span.first:
                yield run

    def _read(self, keys: list[RangeKey]) -> dict[RangeKey, list[ListedPractice]]:
        if not reads_in_batches(self.listings) or not _disjoint(keys):
            return {key: self.listings.query_range(*key) for key in keys}
        # One batch (its Queries run concurrently); disjoint ranges tell which range each practice came from.
        by_key: dict[RangeKey, list[ListedPractice]] = {key: [] for key in keys}
        by_partition: dict[str, list[RangeKey]] = {}
        for key in keys:
            by_partition.setdefault(key[0], []).append(key)
        for practice in self.listings.query_ranges([KeyRange(*key) for key in keys]):
            by_key[next(key for key in by_partition[practice.partition] if _holds(key, practice))].append(practice)
        return by_key

    def _keep(self, key: RangeKey, practices: list[ListedPractice], now: float) -> None:
        """A range just read replaces what its cells held; a range larger than the whole cache is not kept."""
        span = span_of(*key)
        if span is None or len(practices) > self.max_items:
            return
        pieces = []
        for run in list(self._overlapping(span)):
            self._forget(run)
            pieces += run.outside(span, key[1], key[2])
        for run in [*pieces, _Run(span, now, practices)]:
            bisect.insort(self._runs.setdefault(run.partition, []), run, key=_first)
            self._recent[run] = None
            self.cached_items += len(run.practices)

    def _forget(self, run: _Run) -> None:
        runs = self._runs[run.partition]
        runs.remove(run)
        if not runs:
            del self._runs[run.partition]
        del self._recent[run]
        self.cached_items -= len(run.practices)

    def _evict(self) -> None:
        while self.cached_items > self.max_items:
            self._forget(next(iter(self._recent)))

    def density_per_km2(self, lat: float, lon: float) -> float | None:
        """The store's hint, kept per point for max_age (it changes what a search reads, never its answer)."""
        if not gives_density_hints(self.listings):
            return None
        now = self.clock()
        with self._lock:
            held = self._hints.get((lat, lon))
            if held is not None and now - held[0] < self.max_age:
                self._hints.move_to_end((lat, lon))
                return held[1]
        hint = self.listings.density_per_km2(lat, lon)
        with self._lock:
            self._hints[(lat, lon)] = (now, hint)
            self._hints.move_to_end((lat, lon))
            while len(self._hints) > _HINTS_KEPT:
                self._hints.popitem(last=False)
        return hint

    def profile(self, psychologist_id: str) -> PublicProfile | None:
        """Read through, never cached: a profile is always the stored one."""
        return self.listings.profile(psychologist_id)  # type: ignore[attr-defined]


def _first(run: _Run) -> int:
    return run.first


def _disjoint(keys: list[RangeKey]) -> bool:
    ordered = sorted(keys)
    return all(a[0] != b[0] or a[2] < b[1] for a, b in pairwise(ordered))


def _holds(key: RangeKey, practice: ListedPractice) -> bool:
    partition, low, high = key
    return practice.partition == partition and low <= practice.sort_key <= high


@cache
def cached_directory_store() -> CachedListings:
    """The search's store in a warm function, reused across invocations (one cache per function instance)."""
    return CachedListings(directory_store())
