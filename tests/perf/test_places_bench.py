"""Places suggestions: what shipping the communes index with the function costs, and a suggestion's latency.

Run by `make bench`. Measures, on the generated index (functions/msp/places/communes.json):
- loading it in a fresh process (what a cold start adds), and the memory it holds;
- suggestions through the handler, in-process as the local gateway runs it, interleaved with one GetItem on
  DynamoDB Local through the same kind of client: a table-backed index would cost at least that GetItem per
  suggestion (one item per typed prefix, precomputed), so the ratio says what the table would add.
The queries are what patients type: the first 1 to 8 letters of communes' names drawn by population, the same
abbreviated ("st ..."), and postcodes of 2 to 5 digits.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from urllib.parse import urlencode

from infra.gateway import build_event
from infra.template import FUNCTIONS_DIR

ROUNDS = int(os.environ.get("BENCH_PLACES_QUERIES", "3000"))
COLD_RUNS = 7


def _queries(index, count: int) -> list[str]:
    rng = random.Random(17)
    places = [index.place(position) for position in range(len(index))]
    weights = [max(place.population, 1) for place in places]
    queries = []
    while len(queries) < count:
        place = rng.choices(places, weights)[0]
        kind = rng.random()
        if kind < 0.6:
            queries.append(place.name[: rng.randint(1, 8)])
        elif kind < 0.75 and place.name.startswith(("Saint-", "Sainte-")):
            queries.append(place.name.replace("Saint", "st", 1)[: rng.randint(4, 12)])
        else:
            queries.append(rng.choice(place.postcodes)[: rng.randint(2, 5)])
    return [query for query in queries if query.strip(" -'")]


def _fresh(statement: str, setup: str = "pass") -> float:
    """Seconds `statement` takes in a fresh process, after `setup`."""
    code = f"import time; {setup}; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=FUNCTIONS_DIR)
    return float(result.stdout.strip().splitlines()[-1])


def test_places_index_load_memory_and_suggestions_against_a_get_item(stack):
    from msp.places.catalogue import DATA_FILE, load_index
    from msp.storage.aws import dynamodb_client

    print(f"\n--- places: {DATA_FILE.name}, {DATA_FILE.stat().st_size / 1e6:.1f} MB")
    loads = [_fresh("load_index()", "from msp.places.catalogue import load_index") for _ in range(COLD_RUNS)]
    print(
        f"loading the index in a fresh process: {statistics.median(loads) * 1000:.0f} ms "
        f"(median of {COLD_RUNS}, load average {os.getloadavg()[0]:.1f}; the handler's whole cold import is in "
        "test_cold_start)"
    )
    memory = subprocess.run(
        [
            sys.executable,
            "-c",
            "import tracemalloc; tracemalloc.start(); from msp.places.catalogue import load_index; "
            "index = load_index(); print(tracemalloc.get_traced_memory()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=FUNCTIONS_DIR,
    )
    print(f"memory held after loading (tracemalloc, module included): {int(memory.stdout) / 1e6:.1f} MB")

    index = load_index()
    queries = _queries(index, ROUNDS)
    (route,) = [r for r in stack.template.routes if r.route_key == "GET /v1/places"]
    client = dynamodb_client()
    table = stack.names.table("DirectoryTable")
    key = {"pk": {"S": "PSYCHOLOGIST#bench-places"}, "sk": {"S": "PROFILE"}}
    client.put_item(TableName=table, Item=key | {"name": {"S": "x" * 200}})

    def suggest(query: str) -> dict:
        event = build_event(route, "GET", route.path, urlencode({"q": query}), [], b"", {}, None, "127.0.0.1")
        return stack.runtime.invoke("SuggestPlacesFunction", event)

    for query in queries[:100]:  # warm up: imports, the client, DynamoDB Local's JIT
        suggest(query)
        client.get_item(TableName=table, Key=key)
    suggest_ms, get_ms, domain_ms, found = [], [], [], 0
    from msp.places.matching import PlaceQuery

    for query in queries:
        started = time.perf_counter()
        response = suggest(query)
        suggest_ms.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200, (query, response)
        found += bool(json.loads(response["body"])["places"])
        started = time.perf_counter()
        client.get_item(TableName=table, Key=key)
        get_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        index.suggest(PlaceQuery(q=query))
        domain_ms.append((time.perf_counter() - started) * 1000)

    def p(values, q):
        return statistics.quantiles(values, n=100)[q - 1]

    suggest_p50, get_p50 = statistics.median(suggest_ms), statistics.median(get_ms)
    print(f"{len(queries)} suggestions ({found / len(queries):.0%} found at least one commune)")
    print(
        f"  through the handler: p50 {suggest_p50:.3f} ms, p95 {p(suggest_ms, 95):.3f} ms, max {max(suggest_ms):.2f} ms"
    )
    print(f"  the index alone:     p50 {statistics.median(domain_ms):.3f} ms, p95 {p(domain_ms, 95):.3f} ms")
    print(f"  one GetItem:         p50 {get_p50:.3f} ms, p95 {p(get_ms, 95):.3f} ms")
    print(f"  suggestion p50 / GetItem p50: {suggest_p50 / get_p50:.2f}x")
    assert found > len(queries) * 0.9
