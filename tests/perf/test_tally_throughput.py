"""`make bench`: the tally of a 200,000-session year through its handler, against a bare parallel Scan that only
counts the items of the same table, on the same DynamoDB Local in the same run. Goal: at most 1.3 times the
Scan's time. Also measures the two ways to read a year (ByYear Queries against a parallel Scan), which the
README's choice rests on. Not part of `make test`.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.synthetic import plan_year, session_records

SESSIONS = 200_000
YEAR = 2025
SEGMENTS = 16
ROUNDS = 3
READ_ROUNDS = 2
GOAL = 1.3

pytestmark = pytest.mark.integration


def _parallel(read_one) -> int:
    with ThreadPoolExecutor(max_workers=SEGMENTS) as pool:
        return sum(pool.map(read_one, range(SEGMENTS)))


def bare_scan(client, table: str, **extra) -> int:
    """Every item of the table, 16 segments in parallel, counted and nothing else."""

    def segment(number: int) -> int:
        arguments = {"TableName": table, "Segment": number, "TotalSegments": SEGMENTS, **extra}
        count = 0
        while True:
            page = client.scan(**arguments)
            count += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return count
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return _parallel(segment)


def index_queries(client, table: str, **extra) -> int:
    """The year through ByYear, one Query per shard in parallel, counted and nothing else."""

    def shard(number: int) -> int:
        arguments = {
            "TableName": table,
            "IndexName": "ByYear",
            "KeyConditionExpression": "year_shard = :shard",
            "ExpressionAttributeValues": {":shard": {"S": f"{YEAR}#{number:02d}"}},
            **extra,
        }
        count = 0
        while True:
            page = client.query(**arguments)
            count += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return count
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return _parallel(shard)


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


@pytest.fixture(scope="module")
def bench_year(stack, tally_storage):
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    started = time.perf_counter()
    plan = plan_year(YEAR, SESSIONS, seed=200_000, tag="bench")
    records = session_records(plan, patient_keyring())
    print(f"\nplanned {len(records)} sessions of {YEAR} in {time.perf_counter() - started:.1f} s; loading ...")
    started = time.perf_counter()

    def progress(written: int, total: int) -> None:
        if written == total or written % 20_000 < 25:
            rate = written / (time.perf_counter() - started)
            print(f"  loaded {written:>7}/{total} items ({rate:,.0f} items/s)", flush=True)

    items = session_year_store().import_sessions(records, workers=16, progress=progress)
    print(f"loaded {items} items (sessions and counters) in {time.perf_counter() - started:.1f} s", flush=True)
    return items


def test_tally_of_200000_sessions_against_a_bare_parallel_scan(stack, tally_storage, bench_year):
    from msp.storage.aws import bulk_dynamodb_client
    from msp.storage.session_years import _TALLY_PROJECTION

    client = bulk_dynamodb_client()  # the tally's own client: same pool, same timeouts, for both sides
    table = tally_storage["table"]

    def tally(run: int):
        return lambda: stack.runtime.invoke("TallySessionsFunction", {"year": YEAR, "run_id": f"bench-{run}"})

    # Warm up DynamoDB Local (JIT, caches) on both read paths before measuring anything.
    assert bare_scan(client, table) == bench_year
    assert index_queries(client, table) == bench_year

    scans, tallies = [], []
    for run in range(ROUNDS):  # alternate, so neither side is measured on a colder or busier server
        seconds, counted = timed(lambda: bare_scan(client, table))
        assert counted == bench_year
        scans.append(seconds)
        seconds, outcome = timed(tally(run))
        assert outcome["status"] == "complete", outcome
        assert outcome["totals"]["sessions"] == SESSIONS and outcome["totals"]["drifts"] == 0
        tallies.append(seconds)
        print(f"  round {run + 1}: bare scan {scans[-1]:.2f} s, tally {tallies[-1]:.2f} s", flush=True)

    projection = {"ProjectionExpression": _TALLY_PROJECTION, "ExpressionAttributeNames": {"#date": "date"}}
    by_year = {"#date": "date", "#year": "year"}
    reads = {
        "ByYear Queries, tally's attributes (the tally's read)": lambda: index_queries(client, table, **projection),
        "ByYear Queries, whole items": lambda: index_queries(client, table),
        "parallel Scan, tally's attributes, year filter": lambda: bare_scan(
            client,
            table,
            ProjectionExpression=_TALLY_PROJECTION,
            FilterExpression="#year = :year",
            ExpressionAttributeNames=by_year,
            ExpressionAttributeValues={":year": {"N": str(YEAR)}},
        ),
        "parallel Scan, whole items (the baseline)": lambda: bare_scan(client, table),
    }
    measured = {name: [timed(read)[0] for _ in range(READ_ROUNDS)] for name, read in reads.items()}

    scan, tallied = statistics.median(scans), statistics.median(tallies)
    ratio = tallied / scan
    print(f"\n--- tally of {SESSIONS:,} sessions ({bench_year:,} items with the counters), same DynamoDB Local")
    print(
        f"bare parallel Scan, {SEGMENTS} segments, counting only: {scan:6.2f} s  ({bench_year / scan:>9,.0f} items/s)"
    )
    print(
        f"tally through its handler:                         {tallied:6.2f} s  ({SESSIONS / tallied:>9,.0f} sessions/s)"
    )
    print("  (read, reconcile counters, aggregate, checkpoints, report JSON + 7 CSV files, latest pointer)")
    print(f"ratio tally / scan: {ratio:.2f}x  (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})")
    print(
        f"medians of {ROUNDS} alternated rounds; scans {[round(s, 2) for s in scans]}, tallies "
        f"{[round(s, 2) for s in tallies]}"
    )
    print(f"--- reading the year, {SEGMENTS} readers, counting only (mean of {READ_ROUNDS})")
    for name, seconds in measured.items():
        median = statistics.median(seconds)
        print(f"  {name:55s} {median:6.2f} s  ({bench_year / median:>9,.0f} items/s)")
