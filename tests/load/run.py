"""`make load`: the local stack under a realistic mix, driven by locust, then the invariants.

1. Start the local stack in a child process (127.0.0.1 only, in-memory DynamoDB Local, demo data).
2. Prepare what the users act on: drafts to edit (through the API), candidatures to review (written through the
   storage module, as the test fixtures do: uploading and verifying three documents each would dominate). The
   review pool is topped up while the users run.
3. Run locust headless, as a library in this process: `--users` users (closed loop, no think time) started at
   `--spawn-rate` per second, for `--duration` seconds; at the end each user finishes the action it is in.
4. Print locust's statistics (requests per second, percentiles and failures by route), keep its CSV files in
   .local/load/, then check the invariants in the tables.

Exit status 1 when an answer is neither 2xx nor an expected refusal, a user crashed, or an invariant broke.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Importing locust patches the standard library for gevent: it comes before requests, urllib3 and boto3 load.
import gevent
from locust.env import Environment
from locust.stats import (
    CSV_STATS_INTERVAL_SEC,
    PERCENTILES_TO_REPORT,
    StatsCSVFileWriter,
    get_percentile_stats_summary,
    get_stats_summary,
)

from infra.template import FUNCTIONS_DIR, ROOT, load_template

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

from tests.load import invariants
from tests.load.stack import StackFailed, StackProcess
from tests.load.traffic import EXPECTED_REFUSALS, READS, Draft, Shared, default_read, mix
from tests.load.users import programme_user
from tests.stored_candidatures import store_candidature

MAX_DURATION = 600
MAX_USERS = 64
MAX_SPAWN_RATE = 64.0
DRAFTS = 12
# Candidatures open for review: topped up by a batch whenever fewer than POOL_LOW are left.
POOL_LOW = POOL_BATCH = 100
# At the end of the run, how long a user may take to finish its action before it is cut short.
STOP_TIMEOUT = 30.0
OUTPUT_DIR = ROOT / ".local" / "load"
CSV_PREFIX = OUTPUT_DIR / "locust"  # locust_stats.csv, locust_stats_history.csv, locust_failures.csv, ...


# ---------------------------------------------------------------- what the users act on


def review_pool(count: int, offset: int) -> list[tuple[str, int, str]]:
    """`count` submitted candidatures with verified documents, in the demo departments, written through the
    storage module with their creation audit event: (id, version, status)."""
    from infra.seed import DEMO_PRACTICES, demo_fields, practice_in, rpps_with_key

    departments = [practice[6] for practice in DEMO_PRACTICES]
    pool = []
    for number in range(offset, offset + count):
        fields = demo_fields(number % len(DEMO_PRACTICES))
        fields["identifier"] = {"type": "rpps", "value": rpps_with_key(f"2{number:09d}")}
        fields["practices"] = [practice_in(departments[number % len(departments)])]
        candidature = store_candidature(fields, owner_sub=f"load-psychologist-{number}", actor="load-setup")
        pool.append((candidature.id, 1, "submitted"))
    return pool


def drafts(base_url: str, issuer) -> list[Draft]:
    """Drafts created through the API, each edited by its owner during the run."""
    from infra.api_client import ApiClient
    from infra.seed import demo_fields, rpps_with_key

    client = ApiClient(base_url, issuer)
    made = []
    for number in range(DRAFTS):
        token = issuer.mint("psychologist", sub=f"load-editor-{number}", ttl=4 * 3600)
        fields = demo_fields(number) | {"identifier": {"type": "rpps", "value": rpps_with_key(f"3{number:09d}")}}
        response = client.create_candidature(token, fields)
        response.raise_for_status()
        made.append(Draft(response.json()["id"], token))
    return made


def declarers(issuer) -> list[str]:
    """Tokens of the demo psychologists the seed accepted."""
    from infra.seed import DEMO_REVIEW

    accepted = [index for index, steps in DEMO_REVIEW.items() if "accept" in steps]
    return [issuer.mint("psychologist", sub=f"demo-psychologist-{index}", ttl=4 * 3600) for index in accepted]


# ---------------------------------------------------------------- the run


class ReviewPool:
    """Keeps candidatures open for review while the users run (written as the set-up writes them)."""

    def __init__(self, shared: Shared):
        self.shared = shared
        self.written = 0
        self.done = threading.Event()

    def top_up(self, count: int) -> None:
        for candidature_id, version, status in review_pool(count, self.written):
            self.shared.add_for_review(candidature_id, version, status)
        self.written += count

    def keep_open(self) -> None:
        while not self.done.wait(0.2):
            if self.shared.open_count < POOL_LOW:
                self.top_up(POOL_BATCH)


def drive(
    user_class: type, host: str, *, users: int, spawn_rate: float, seconds: float, csv_prefix: Path
) -> Environment:
    """A locust run, headless: its statistics stay in the returned environment and in the CSV files."""
    environment = Environment(user_classes=[user_class], host=host, stop_timeout=STOP_TIMEOUT)
    runner = environment.create_local_runner()
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    csv_writer = StatsCSVFileWriter(environment, PERCENTILES_TO_REPORT, str(csv_prefix), full_history=True)
    writing = gevent.spawn(csv_writer.stats_writer)
    runner.start(users, spawn_rate=spawn_rate)
    # gevent's timers count from the time its loop last noted, stale after the set-up: the deadline is read afresh.
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        gevent.sleep(min(left, 0.5))
    runner.quit()  # the users finish the actions they are in (STOP_TIMEOUT), then the runner ends
    gevent.sleep(CSV_STATS_INTERVAL_SEC)  # one more pass of the writer, with the final figures
    writing.kill()
    csv_writer.close_files()
    return environment


# ---------------------------------------------------------------- report


def print_report(environment: Environment, shared: Shared, checks: list[invariants.Check], read: str) -> None:
    print(f"\nLoad: read share on {READS[read]}")
    for line in (
        *get_stats_summary(environment.stats, current=False),
        *get_percentile_stats_summary(environment.stats),
    ):
        print(line)
    by_status: Counter = Counter()
    for (_, status, _), count in shared.refused.items():
        by_status[status] += count
    expected = sum(count for key, count in shared.refused.items() if key in EXPECTED_REFUSALS)
    refused = ", ".join(f"{status} ×{count}" for status, count in sorted(by_status.items())) or "none"
    print(f"\nNon-2xx answers by status: {refused} ({expected} of them expected refusals)")
    failures = environment.stats.errors.values()
    print("Failures: " + (", ".join(f"{f.method} {f.name} {f.error} ×{f.occurrences}" for f in failures) or "none"))
    for crash in environment.runner.exceptions.values():
        print(f"User crashed ×{crash['count']}: {crash['msg']}\n{crash['traceback']}")
    print("\nInvariants (read in the tables after the run):")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name} ({check.checked} checked)")
        for problem in check.problems[:10]:
            print(f"          {problem}")


def write_report(environment: Environment, shared: Shared, checks: list[invariants.Check], args) -> Path:
    total = environment.stats.total
    report = {
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration_s": args.duration,
        "requests": total.num_requests,
        "rps": round(total.total_rps, 1),
        "p50_ms": total.get_response_time_percentile(0.5),
        "p95_ms": total.get_response_time_percentile(0.95),
        "p99_ms": total.get_response_time_percentile(0.99),
        "failures": [
            {"route": f"{f.method} {f.name}", "error": str(f.error), "count": f.occurrences}
            for f in environment.stats.errors.values()
        ],
        "refused": [{"route": r, "status": s, "code": c, "count": n} for (r, s, c), n in shared.refused.items()],
        "crashes": [crash["msg"] for crash in environment.runner.exceptions.values()],
        "invariants": [{"name": c.name, "checked": c.checked, "problems": c.problems} for c in checks],
        "statistics": f"{CSV_PREFIX.relative_to(ROOT)}_*.csv",
    }
    path = OUTPUT_DIR / "report.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return path


# ---------------------------------------------------------------- main


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help=f"seconds of the run (≤ {MAX_DURATION})")
    parser.add_argument("--users", type=int, default=16, help=f"simulated users (≤ {MAX_USERS})")
    parser.add_argument("--spawn-rate", type=float, default=4, help=f"users started per second (≤ {MAX_SPAWN_RATE:g})")
    parser.add_argument("--read", choices=["auto", *READS], default="auto", help="the 80 %% read share")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the stack's files (.local/load/<time>/)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in ]0, {MAX_DURATION}]")
    if not 1 <= args.users <= MAX_USERS:
        parser.error(f"--users must be in [1, {MAX_USERS}]")
    if not 0 < args.spawn_rate <= MAX_SPAWN_RATE:
        parser.error(f"--spawn-rate must be in ]0, {MAX_SPAWN_RATE:g}]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    routes = {route.route_key for route in load_template().routes}
    read = default_read(routes) if args.read == "auto" else args.read
    if READS[read] not in routes:
        print(f"{READS[read]} is not a route of template.yaml: use --read queue")
        return 2
    workdir = OUTPUT_DIR / time.strftime("%Y%m%dT%H%M%S")
    stack = StackProcess(workdir)
    print(f"Starting the local stack on 127.0.0.1 ({workdir}) ...", flush=True)
    try:
        ready = stack.start()
    except StackFailed as error:
        print(error)
        return 2
    try:
        return _measure(args, ready, mix(read), read, workdir)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _measure(args: argparse.Namespace, ready: dict[str, Any], shares: dict[str, int], read: str, workdir: Path) -> int:
    import boto3

    from infra.dev_issuer import DevIssuer
    from msp.clock import programme_today
    from msp.sessions.rules import PatientKeyring

    os.environ.update(ready["environment"])  # the storage module and boto3 reach the child's stack
    base_url = ready["base_url"]
    print(f"{ready['seed']}\nAPI at {base_url}; preparing the data the users act on ...", flush=True)
    issuer = DevIssuer(workdir / "issuer")
    keyring = PatientKeyring.from_secret(os.environ["PATIENT_KEY_DEV_SECRET"])
    shared = Shared(
        today=programme_today(),
        patient_key=keyring.patient_key,
        declarers=declarers(issuer),
        readers=[
            issuer.mint("admin", sub="load-admin", ttl=4 * 3600),
            issuer.mint("reviewer", sub="load-reviewer-scoped", departments="75,92,13", ttl=4 * 3600),
        ],
        deciders=[
            issuer.mint("admin", sub="load-admin", ttl=4 * 3600),
            issuer.mint("reviewer", sub="load-reviewer-national", departments="*", ttl=4 * 3600),
        ],
        drafts=drafts(base_url, issuer),
        seed=args.seed,
    )
    pool = ReviewPool(shared)
    pool.top_up(2 * POOL_LOW)
    topping_up = gevent.spawn(pool.keep_open)
    print(f"locust: {args.users} users, {args.spawn_rate:g} started per second, {args.duration:g} s ...", flush=True)
    environment = drive(
        programme_user(shared, shares, args.seed),
        base_url,
        users=args.users,
        spawn_rate=args.spawn_rate,
        seconds=args.duration,
        csv_prefix=CSV_PREFIX,
    )
    pool.done.set()
    topping_up.join()

    dynamodb = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
    app_items = invariants.scan(dynamodb, os.environ["APP_TABLE"])
    checks = [
        *invariants.session_checks(invariants.scan(dynamodb, os.environ["SESSIONS_TABLE"]), shared.declared),
        *invariants.audit_checks(
            app_items, {entry.candidature_id: entry.decisions for entry in shared.under_review.values()}
        ),
        invariants.listing_check(app_items, invariants.scan(dynamodb, os.environ["DIRECTORY_TABLE"])),
        invariants.drafts_check(app_items, {draft.candidature_id: draft.landed for draft in shared.drafts}),
    ]
    print_report(environment, shared, checks, read)
    print(f"\nReport: {write_report(environment, shared, checks, args)}; statistics: {CSV_PREFIX}_*.csv")
    failed = bool(
        environment.stats.total.num_failures or environment.runner.exceptions or not all(check.ok for check in checks)
    )
    print("Load test FAILED" if failed else "Load test passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
