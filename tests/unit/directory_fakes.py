"""An in-memory directory behind the search port, counting what a search reads, and data helpers."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from msp.cursors import CursorKeys
from msp.directory.cellkeys import KeyRange, index_keys
from msp.directory.listing import ListedPractice
from msp.directory.names import name_tokens
from msp.directory.search import SearchPage, SearchQuery, search_nearest
from msp.directory.spherical import haversine_km

KEYS = CursorKeys(b"unit-test-cursor-secret-0123456789")


def listed(
    practice_id: str,
    lat: float,
    lon: float,
    *,
    first_name: str = "Camille",
    last_name: str = "Martin",
    languages: Sequence[str] = ("fr",),
    publics: Sequence[str] = ("adultes",),
    teleconsultation: bool = False,
) -> ListedPractice:
    partition, sort_key = index_keys(lat, lon, practice_id)
    return ListedPractice(
        partition=partition,
        sort_key=sort_key,
        psychologist_id=practice_id.rsplit("-", 1)[0],
        practice_id=practice_id,
        name=f"{first_name} {last_name}",
        name_tokens=name_tokens(first_name, last_name),
        address="1 rue de l'Exemple",
        postcode="75001",
        city="Paris",
        department="75",
        lat=lat,
        lon=lon,
        phone=None,
        email="contact@example.fr",
        website=None,
        languages=list(languages),
        publics=list(publics),
        teleconsultation=teleconsultation,
    )


class InMemoryListings:
    """Partitions sorted by sort key; `query_range` answers like a DynamoDB Query with BETWEEN."""

    def __init__(self, items: Iterable[ListedPractice] = ()):
        self._keys: dict[str, list[str]] = {}
        self._items: dict[str, list[ListedPractice]] = {}
        self.queries = 0
        self.items_read = 0
        self.ranges: list[tuple[str, str, str]] = []
        for item in items:
            self.put(item)

    def put(self, item: ListedPractice) -> None:
        keys = self._keys.setdefault(item.partition, [])
        at = bisect.bisect_left(keys, item.sort_key)
        if at < len(keys) and keys[at] == item.sort_key:
            raise ValueError(f"duplicate key {item.partition} {item.sort_key}")
        keys.insert(at, item.sort_key)
        self._items.setdefault(item.partition, []).insert(at, item)

    def remove(self, item: ListedPractice) -> None:
        at = self._keys[item.partition].index(item.sort_key)
        del self._keys[item.partition][at]
        del self._items[item.partition][at]

    def all(self) -> list[ListedPractice]:
        return [item for items in self._items.values() for item in items]

    def partition_sizes(self) -> dict[str, int]:
        return {partition: len(items) for partition, items in self._items.items()}

    def reset_counts(self) -> None:
        self.queries = self.items_read = 0
        self.ranges = []

    def query_range(self, partition: str, low: str, high: str) -> list[ListedPractice]:
        assert low <= high, (low, high)
        self.queries += 1
        self.ranges.append((partition, low, high))
        keys = self._keys.get(partition, [])
        found = self._items.get(partition, [])[bisect.bisect_left(keys, low) : bisect.bisect_right(keys, high)]
        self.items_read += len(found)
        return list(found)


class BatchListings(InMemoryListings):
    """Takes a step's ranges at once, as the DynamoDB adapter does to run them concurrently."""

    def __init__(self, items: Iterable[ListedPractice] = ()):
        super().__init__(items)
        self.batches: list[int] = []

    def query_ranges(self, ranges: Sequence[KeyRange]) -> list[ListedPractice]:
        self.batches.append(len(ranges))
        return [item for r in ranges for item in self.query_range(r.partition, r.low, r.high)]


class HintedListings(InMemoryListings):
    """Also answers a density hint, possibly a wrong one."""

    def __init__(self, items: Iterable[ListedPractice] = (), *, hint: float | None = None):
        super().__init__(items)
        self.hint = hint

    def density_per_km2(self, lat: float, lon: float) -> float | None:
        return self.hint


def brute_force(items: Iterable[ListedPractice], query: SearchQuery) -> list[tuple[str, float]]:
    """(practice id, distance) of every match, by distance then id: what the search must equal."""
    scored = []
    for item in items:
        distance = haversine_km(query.lat, query.lon, item.lat, item.lon)
        if distance <= query.radius_km and query.admits(item):
            scored.append((distance, item.practice_id))
    return [(practice_id, distance) for distance, practice_id in sorted(scored)]


def all_pages(port, query: SearchQuery, *, max_pages: int = 1000, **options) -> list[SearchPage]:
    pages = []
    cursor = None
    while len(pages) < max_pages:
        page = search_nearest(port, query.model_copy(update={"cursor": cursor}), cursor_keys=KEYS, **options)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    return pages
