"""DirectoryTable: the listed practices a search reads, the public profiles and the density counters.

DirectoryTable holds public data only (the public routes read nothing else):
  practice  pk=<coarse H3 cell>      sk=<fine cell hex>#<practice id>  what a search shows or filters on
  profile   pk=PSYCHOLOGIST#<id>     sk=PROFILE                         the public profile
  counters  pk=DENSITY#<res-3 cell>  sk=RES7                            one number per res-7 cell (the hint)
All three change together, in the transaction that saves the candidature whose listing changed: the domain's
ListingPlan becomes transaction items here (`listing_writes`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING, Any

import h3
from aws_lambda_powertools import Logger

from msp.config import settings
from msp.directory.listing import (
    DENSITY_REGION_RESOLUTION,
    DENSITY_RESOLUTION,
    LISTING_FIELDS,
    ListedPractice,
    ListingPlan,
    PublicProfile,
    density_from_counts,
    density_region,
    density_regions_around,
)
from msp.errors import StorageBusy
from msp.storage.aws import aws_errors, batch_get, dynamodb_client, from_item, pages, to_item, without_keys

if TYPE_CHECKING:
    from msp.directory.cellkeys import KeyRange

# A child of the function's Powertools logger: its lines are the function's JSON lines, correlation id included.
logger = Logger(child=True)

PROFILE_PREFIX = "PSYCHOLOGIST#"
DENSITY_PREFIX = "DENSITY#"
DENSITY_MAX_AGE = 300  # seconds a warm function keeps the counters before reading them again
# A search needs the sort key (for the partition's order) and the listing; nothing else is sent back.
LISTING_PROJECTION = "sk, #listing"
LISTING_NAMES = {"#listing": "listing"}
# A search step sends a handful of Queries (4 at most by default, more where it crosses partitions).
_QUERY_WORKERS = 8


@cache
def _query_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_QUERY_WORKERS, thread_name_prefix="directory-query")


def directory_item(practice: ListedPractice) -> dict[str, Any]:
    """A listed practice as a DirectoryTable item: pk = its coarse H3 cell, sk = "<fine cell hex>#<practice id>",
    and its public fields as one compact JSON array, `listing` (see LISTING_FIELDS).

    One attribute rather than seventeen: a search reads tens of items per request, and every attribute
    and byte costs the server to send and botocore to parse (make bench on DynamoDB Local: a search's
    p50 went from 19.8 ms with the fields as attributes to 10.8 ms as one JSON object; see README).
    """
    listing = [getattr(practice, name) for name in LISTING_FIELDS]
    return {
        "pk": practice.partition,
        "sk": practice.sort_key,
        "listing": json.dumps(listing, ensure_ascii=False, separators=(",", ":")),
    }


# The listing's values many practices share: a town's postcode, city and department, and the words of lists.
_SHARED_VALUES = tuple(LISTING_FIELDS.index(name) for name in ("postcode", "city", "department"))
_SHARED_WORDS = tuple(LISTING_FIELDS.index(name) for name in ("name_tokens", "languages", "publics"))


def practice_from_item(partition: str, item: dict[str, Any]) -> ListedPractice:
    """A stored practice, read straight from the wire format. Items are written only by this module
    (directory_item), so their shape is known: no TypeDeserializer (Decimals), no validation; the
    listing's values are ListedPractice's fields after its keys but the practice id, in order (LISTING_FIELDS).

    The strings many practices share are interned, one copy in the process: a warm search function keeps
    the practices it read (CachedListings), 1.06 kB each instead of 1.49 kB (tracemalloc, make bench's data).
    """
    sort_key = item["sk"]["S"]
    values = json.loads(item["listing"]["S"])
    for index in _SHARED_VALUES:
        values[index] = sys.intern(values[index])
    for index in _SHARED_WORDS:
        values[index] = list(map(sys.intern, values[index]))
    psychologist_id, *fields = values
    return ListedPractice(partition, sort_key, psychologist_id, sort_key.split("#", 1)[1], *fields)


def _density_key(region: str) -> dict[str, Any]:
    return {"pk": {"S": f"{DENSITY_PREFIX}{region}"}, "sk": {"S": "RES7"}}


def _profile_key(psychologist_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{PROFILE_PREFIX}{psychologist_id}"}, "sk": {"S": "PROFILE"}}


def _counter_updates(table: str, density: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """One Update (ADD) per region whose counters move."""
    updates = []
    for region, changes in sorted(density.items()):
        names = {f"#c{n}": cell for n, cell in enumerate(sorted(changes))}
        updates.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": _density_key(region),
                    "UpdateExpression": "ADD " + ", ".join(f"{name} :c{name[2:]}" for name in names),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        f":c{name[2:]}": {"N": str(changes[cell])} for name, cell in names.items()
                    },
                }
            }
        )
    return updates


def listing_writes(plan: ListingPlan) -> list[dict[str, Any]]:
    """The plan as transaction items: practices put and deleted, the profile put or deleted, counters moved."""
    table = settings().directory_table
    writes: list[dict[str, Any]] = [
        {"Put": {"TableName": table, "Item": to_item(directory_item(practice))}} for practice in plan.put
    ]
    writes += [
        {"Delete": {"TableName": table, "Key": {"pk": {"S": p.partition}, "sk": {"S": p.sort_key}}}}
        for p in plan.delete
    ]
    if plan.profile is not None:
        item = _profile_key(plan.psychologist_id) | to_item(plan.profile.model_dump(mode="json"))
        writes.append({"Put": {"TableName": table, "Item": item}})
    if plan.delete_profile:
        writes.append({"Delete": {"TableName": table, "Key": _profile_key(plan.psychologist_id)}})
    return writes + _counter_updates(table, plan.density)


class DirectoryStore:
    """The directory behind the search port (one Query per sort-key range, a step's ranges at once), the
    density hint (one GetItem per warm function every few minutes) and the public profiles."""

    def __init__(self, table: str, *, page_size: int | None = None, concurrent: bool = True):
        self.table = table
        self.page_size = page_size  # tests make Queries paginate with a small one
        self.concurrent = concurrent  # the benchmark compares with one Query after the other
        # region -> (when read, its counters): the density hint's cache in a warm function
        self._regions: dict[str, tuple[float, dict[str, int]]] = {}

    def query_range(self, partition: str, low: str, high: str) -> list[ListedPractice]:
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":low": {"S": low}, ":high": {"S": high}},
            "ProjectionExpression": LISTING_PROJECTION,
            "ExpressionAttributeNames": LISTING_NAMES,
        }
        if self.page_size:
            arguments["Limit"] = self.page_size
        return [
            practice_from_item(partition, item)
            for page in pages(dynamodb_client().query, arguments)
            for item in page["Items"]
        ]

    def query_ranges(self, ranges: Sequence[KeyRange]) -> list[ListedPractice]:
        """Every range's items, the Queries running concurrently (boto3 clients are thread-safe)."""
        if len(ranges) == 1 or not self.concurrent:
            return [practice for key_range in ranges for practice in self.query_range(*key_range)]
        # The first range on this thread, the others on the pool's.
        futures = [_query_pool().submit(self.query_range, *key_range) for key_range in ranges[1:]]
        first = self.query_range(*ranges[0])
        return first + [practice for future in futures for practice in future.result()]

    def density_counts(self, regions: Sequence[str]) -> Mapping[str, int] | None:
        """Listed practices per density cell of these regions, as last read (at most DENSITY_MAX_AGE seconds
        ago): one BatchGetItem for the regions not read yet, or read too long ago. None when unreadable."""
        now = time.monotonic()
        stale = [region for region in regions if now - self._regions.get(region, (-math.inf, {}))[0] > DENSITY_MAX_AGE]
        if stale:
            try:
                self._read_regions(stale, now)
            except StorageBusy:
                # Only a hint: a search without it is as exact, it just reads a step or two more.
                logger.warning("directory density counters unreadable; searching without them", exc_info=True)
                if any(region not in self._regions for region in regions):
                    return None
        return _RegionCounters({region: self._regions.get(region, (0.0, {}))[1] for region in regions})

    def _read_regions(self, regions: list[str], now: float) -> None:
        found: dict[str, dict[str, int]] = {region: {} for region in regions}
        items = batch_get({self.table: {"Keys": [_density_key(region) for region in regions]}})
        for item in items.get(self.table, []):
            region = item["pk"]["S"].removeprefix(DENSITY_PREFIX)
            found[region] = {name: int(value["N"]) for name, value in item.items() if "N" in value}
        for region, counters in found.items():
            self._regions[region] = (now, counters)

    def density_per_km2(self, lat: float, lon: float) -> float | None:
        return density_from_counts(self.density_counts(density_regions_around(lat, lon)), lat, lon)

    def profile(self, psychologist_id: str) -> PublicProfile | None:
        with aws_errors():
            item = dynamodb_client().get_item(TableName=self.table, Key=_profile_key(psychologist_id)).get("Item")
        return PublicProfile.model_validate(without_keys(from_item(item))) if item else None

    def recount_density(self) -> dict[str, int]:
        """Rebuild the counters from the stored practices (a repair, or after a bulk load that bypassed the
        review transaction); a Scan, never used by a route. Returns the counters, by density cell."""
        from msp.directory.cellkeys import fine_cell_of

        counts: dict[str, int] = {}
        stored_regions: list[dict[str, Any]] = []
        # Small pages: each stays well within the client's read timeout.
        arguments: dict[str, Any] = {"TableName": self.table, "ProjectionExpression": "pk, sk", "Limit": 2000}
        for page in pages(dynamodb_client().scan, arguments):
            for item in page["Items"]:
                pk = item["pk"]["S"]
                if pk.startswith(DENSITY_PREFIX):
                    stored_regions.append(item)
                elif not pk.startswith(PROFILE_PREFIX):
                    cell = h3.cell_to_parent(fine_cell_of(item["sk"]["S"]), DENSITY_RESOLUTION)
                    counts[cell] = counts.get(cell, 0) + 1
        regions: dict[str, dict[str, int]] = {}
        for cell, count in counts.items():
            regions.setdefault(density_region(cell), {})[cell] = count
        self.write_density(regions)
        with aws_errors():
            for key in stored_regions:
                if key["pk"]["S"].removeprefix(DENSITY_PREFIX) not in regions:
                    dynamodb_client().delete_item(TableName=self.table, Key=key)
        return counts

    def write_density(self, regions: dict[str, dict[str, int]]) -> None:
        """Replace the counters of these regions (by region, then density cell), e.g. after a bulk load."""
        with aws_errors():
            for region, counters in regions.items():
                item = _density_key(region) | {cell: {"N": str(count)} for cell, count in counters.items()}
                dynamodb_client().put_item(TableName=self.table, Item=item)
        self._regions.clear()


class _RegionCounters(Mapping[str, int]):
    """The counters of a few regions seen as one mapping, by density cell, without copying them: a hint
    looks up a few dozen cells, where merging the regions' dicts would copy thousands."""

    def __init__(self, regions: dict[str, dict[str, int]]):
        self._regions = regions

    def __getitem__(self, cell: str) -> int:
        return self._regions[h3.cell_to_parent(cell, DENSITY_REGION_RESOLUTION)][cell]

    def __iter__(self) -> Iterator[str]:
        return (cell for counters in self._regions.values() for cell in counters)

    def __len__(self) -> int:
        return sum(len(counters) for counters in self._regions.values())


@cache
def directory_store() -> DirectoryStore:
    return DirectoryStore(settings().directory_table)
