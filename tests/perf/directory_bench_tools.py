"""What the directory search benchmarks share: loading the national directory into DynamoDB Local, counting
the requests a search sends, an exhaustive reference to check answers against, and calling the handler."""

from __future__ import annotations

import bisect
import math
import statistics
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from infra.gateway import build_event
from msp.directory.search import SearchQuery
from msp.directory.spherical import haversine_km

WRITERS = 8


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def p50(values):
    return statistics.median(values)


class DynamoDBMeter:
    """Requests sent and items returned by Query, on one client, from any thread."""

    def __init__(self, client):
        self._lock = threading.Lock()
        self.requests: Counter = Counter()
        self.items = 0
        client.meta.events.register("before-call.dynamodb.*", self._request)
        client.meta.events.register("after-call.dynamodb.Query", self._queried)

    def _request(self, model, **_):
        with self._lock:
            self.requests[model.name] += 1

    def _queried(self, parsed, **_):
        with self._lock:
            self.items += parsed.get("Count", 0)

    def reset(self):
        with self._lock:
            self.requests.clear()
            self.items = 0


class ReferenceIndex:
    """Exhaustive haversine over every practice that can be within the radius: the dataset bucketed by
    0.1° of latitude, each bucket sorted by longitude, so only a bounding box (widened by a margin) is
    scanned. Checked against a full linear scan on a sample of queries."""

    def __init__(self, practices):
        self.practices = practices
        self.buckets: dict[int, tuple[list[float], list]] = {}
        grouped = defaultdict(list)
        for practice in practices:
            grouped[math.floor(practice.lat * 10)].append(practice)
        for key, members in grouped.items():
            members.sort(key=lambda p: p.lon)
            self.buckets[key] = ([p.lon for p in members], members)

    def candidates(self, lat: float, lon: float, radius_km: float):
        dlat = radius_km / 111.0 + 0.01
        dlon = radius_km / (111.0 * math.cos(math.radians(min(abs(lat) + dlat, 89)))) + 0.01
        for key in range(math.floor((lat - dlat) * 10), math.floor((lat + dlat) * 10) + 1):
            if key in self.buckets:
                lons, members = self.buckets[key]
                yield from members[bisect.bisect_left(lons, lon - dlon) : bisect.bisect_right(lons, lon + dlon)]

    def nearest(self, query: SearchQuery, everything: bool = False) -> list[tuple[str, float]]:
        pool = self.practices if everything else self.candidates(query.lat, query.lon, query.radius_km)
        scored = sorted(
            (distance, p.practice_id)
            for p in pool
            if (distance := haversine_km(query.lat, query.lon, p.lat, p.lon)) <= query.radius_km and query.admits(p)
        )
        return [(practice_id, distance) for distance, practice_id in scored]

    def page(self, query: SearchQuery, start: int, limit: int) -> tuple[list[tuple[str, float]], bool]:
        """(practice id, distance rounded as answered) of results start..start + limit, and whether more follow."""
        expected = self.nearest(query)
        page = [(practice_id, round(distance, 3)) for practice_id, distance in expected[start : start + limit]]
        return page, len(expected) > start + limit


def answered(body: dict) -> tuple[list[tuple[str, float]], bool]:
    """A search answer as ReferenceIndex.page gives it."""
    return [(r["practice_id"], r["distance_km"]) for r in body["results"]], body["next_cursor"] is not None


def load(client, table: str, items: list[dict]) -> float:
    """Parallel BatchWriteItem (25 items each, unprocessed ones retried); seconds taken."""
    batches = [items[start : start + 25] for start in range(0, len(items), 25)]
    done = [0]
    lock = threading.Lock()
    started = time.perf_counter()

    def write(batch):
        pending = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        attempt = 0
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if pending:
                attempt += 1
                time.sleep(min(0.05 * 2**attempt, 1))
        with lock:
            done[0] += len(batch)
            if done[0] % 10_000 < len(batch) or done[0] == len(items):
                rate = done[0] / (time.perf_counter() - started)
                print(f"  loaded {done[0]:7,d} / {len(items):,d} practices ({rate:,.0f} items/s)", flush=True)

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - started


def search_event(route, params: dict) -> dict:
    raw = urlencode({k: v for k, v in params.items() if v is not None})
    return build_event(route, "GET", route.path, raw, [("accept", "application/json")], b"", {}, None, "127.0.0.1")
