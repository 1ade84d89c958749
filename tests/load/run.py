"""`make load`: the local stack under a realistic mix at the highest rate it sustains, then the invariants.

1. Start the local stack in a child process (127.0.0.1 only, in-memory DynamoDB Local, demo data).
2. Prepare what the users act on: drafts to edit (through the API), candidatures to review (written through the
   storage module, as the test fixtures do: uploading and verifying three documents each would dominate).
3. Ramp: 1, 2, 4, ... users (closed loop, no think time) for a few seconds each; the run uses the fewest users
   that reach the best throughput (within 5 %): more users only queue.
4. Run the mix for `--duration` seconds (at most 600) and at most `--max-actions` actions.
5. Report requests per second, p50/p95/p99 and answers per route; check the invariants in the tables.

Exit status 1 when an answer is neither 2xx nor an expected refusal, a user crashed, or an invariant broke.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.template import FUNCTIONS_DIR, ROOT, load_template

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

from tests.load import invariants
from tests.load.stack import StackFailed, StackProcess
from tests.load.traffic import (
    ACTIONS,
    EXPECTED_REFUSALS,
    READS,
    Draft,
    Http,
    Shared,
    Tally,
    default_read,
    mix,
    percentile,
)
from tests.stored_candidatures import store_candidature

MAX_DURATION = 600
MAX_USERS = 64
RAMP = (1, 2, 4, 8, 16, 32, 64)
DRAFTS = 12
# Reviewer transitions a candidature of the pool takes: start_review, a decision, a deconvention for some.
TRANSITIONS_PER_CANDIDATURE = 2


@dataclass
class Phase:
    users: int
    seconds: float
    tally: Tally
    crashes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.tally.requests / self.seconds if self.seconds else 0.0


class Budget:
    """At most `limit` actions over the whole run, whatever the duration."""

    def __init__(self, limit: int):
        self.left = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def run_phase(
    base_url: str, shared: Shared, shares: dict[str, int], users: int, seconds: float, budget: Budget, seed: int
) -> Phase:
    names, weights = list(shares), list(shares.values())
    tallies = [Tally() for _ in range(users)]
    crashes: list[str] = []
    deadline = time.monotonic() + seconds

    def user(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        http = Http(base_url, tallies[number])
        try:
            while time.monotonic() < deadline and budget.take():
                ACTIONS[rng.choices(names, weights)[0]](http, shared, rng)
        except Exception as error:  # a user that cannot go on is reported, never hidden
            crashes.append(f"user {number}: {type(error).__name__}: {error}")

    started = time.monotonic()
    threads = [threading.Thread(target=user, args=(number,), daemon=True) for number in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase = Phase(users, time.monotonic() - started, Tally(), crashes)
    for tally in tallies:
        phase.tally.add(tally)
    return phase


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


# ---------------------------------------------------------------- report


def route_table(phase: Phase) -> list[dict[str, Any]]:
    rows = []
    for route in sorted(phase.tally.latencies, key=lambda r: -len(phase.tally.latencies[r])):
        values = phase.tally.latencies[route]
        answers = {
            f"{status}{' ' + code if code else ''}": count
            for (answered, status, code), count in sorted(phase.tally.answers.items())
            if answered == route
        }
        rows.append(
            {
                "route": route,
                "requests": len(values),
                "rps": round(len(values) / phase.seconds, 1),
                "p50_ms": round(percentile(values, 0.50), 1),
                "p95_ms": round(percentile(values, 0.95), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
                "answers": answers,
            }
        )
    return rows


def print_report(phase: Phase, rows: list[dict[str, Any]], checks: list[invariants.Check], read: str) -> None:
    print(f"\nLoad: {phase.seconds:.1f} s, {phase.users} users, read share on {READS[read]}")
    print(f"{'route':<52} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  answers")
    for row in rows:
        answers = ", ".join(f"{name} ×{count}" for name, count in row["answers"].items())
        print(
            f"{row['route']:<52} {row['requests']:>8} {row['rps']:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} "
            f"{row['p99_ms']:>8}  {answers}"
        )
    print(f"{'all routes':<52} {phase.tally.requests:>8} {phase.rps:>7.1f}")
    unexpected = phase.tally.unexpected()
    by_status: Counter = Counter()
    for (_, status, _), count in phase.tally.answers.items():
        if not 200 <= status < 300:
            by_status[status] += count
    expected = sum(count for key, count in phase.tally.answers.items() if key in EXPECTED_REFUSALS)
    refused = ", ".join(f"{status} ×{count}" for status, count in sorted(by_status.items())) or "none"
    print(f"\nNon-2xx answers by status: {refused} ({expected} of them expected refusals)")
    print("\nUnexpected answers: " + (", ".join(f"{r} {s} {c} ×{n}" for (r, s, c), n in unexpected.items()) or "none"))
    for crash in phase.crashes:
        print(f"User crashed: {crash}")
    print("\nInvariants (read in the tables after the run):")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name} ({check.checked} checked)")
        for problem in check.problems[:10]:
            print(f"          {problem}")


# ---------------------------------------------------------------- main


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60, help=f"seconds of the measured run (≤ {MAX_DURATION})")
    parser.add_argument("--users", type=int, default=0, help="simulated users; 0: found by the ramp")
    parser.add_argument("--ramp-step", type=float, default=4, help="seconds per step of the ramp")
    parser.add_argument("--max-actions", type=int, default=150_000, help="bound on the actions of the whole run")
    parser.add_argument("--read", choices=["auto", *READS], default="auto", help="the 80 %% read share")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the stack's files (.local/load/)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in ]0, {MAX_DURATION}]")
    if not 0 <= args.users <= MAX_USERS:
        parser.error(f"--users must be in [0, {MAX_USERS}]")
    if not 0 < args.ramp_step <= 10 or not 0 < args.max_actions <= 1_000_000:
        parser.error("--ramp-step must be in ]0, 10] and --max-actions in ]0, 1000000]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    routes = {route.route_key for route in load_template().routes}
    read = default_read(routes) if args.read == "auto" else args.read
    if READS[read] not in routes:
        print(f"{READS[read]} is not a route of template.yaml: use --read queue")
        return 2
    shares = mix(read)
    workdir = ROOT / ".local" / "load" / time.strftime("%Y%m%dT%H%M%S")
    stack = StackProcess(workdir)
    print(f"Starting the local stack on 127.0.0.1 ({workdir}) ...", flush=True)
    try:
        ready = stack.start()
    except StackFailed as error:
        print(error)
        return 2
    try:
        return _measure(args, ready, shares, read, workdir)
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
    budget = Budget(args.max_actions)
    pooled = 0

    def top_up(rps: float, seconds: float) -> None:
        nonlocal pooled
        wanted = int(rps * seconds * shares["transition"] / 100 * 1.5 / TRANSITIONS_PER_CANDIDATURE) + 20
        missing = max(0, wanted - shared.open_count)
        for candidature_id, version, status in review_pool(missing, pooled):
            shared.add_for_review(candidature_id, version, status)
        pooled += missing

    ramp = Phase(0, 0.0, Tally())  # what the ramp's answers add to the verdict
    ramp_steps: list[dict[str, Any]] = []
    users = args.users
    if users == 0:
        top_up(rps=300, seconds=args.ramp_step * len(RAMP))
        users, best = 1, 0.0
        for step, count in enumerate(RAMP):
            phase = run_phase(base_url, shared, shares, count, args.ramp_step, budget, args.seed + step)
            p95 = percentile([v for values in phase.tally.latencies.values() for v in values], 0.95)
            print(f"ramp: {count:>3} users  {phase.rps:7.1f} req/s  p95 {p95:7.1f} ms", flush=True)
            ramp_steps.append({"users": count, "rps": round(phase.rps, 1), "p95_ms": round(p95, 1)})
            ramp.tally.add(phase.tally)
            ramp.crashes.extend(phase.crashes)
            if phase.crashes or phase.tally.unexpected():
                print("ramp: errors at this rate, stopping the ramp here")
                break
            if phase.rps > best * 1.05:
                users, best = count, phase.rps
            elif count >= 4 * users:
                break  # two doublings without gain: saturated
        top_up(rps=best, seconds=args.duration)
    else:
        top_up(rps=400, seconds=args.duration)

    print(f"Measuring for {args.duration:.0f} s with {users} users ...", flush=True)
    phase = run_phase(base_url, shared, shares, users, args.duration, budget, args.seed + 100)

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
    rows = route_table(phase)
    print_report(phase, rows, checks, read)
    if ramp.tally.unexpected() or ramp.crashes:
        print(f"Unexpected during the ramp: {dict(ramp.tally.unexpected())} {ramp.crashes}")
    report = {
        "duration_s": round(phase.seconds, 1),
        "users": phase.users,
        "rps": round(phase.rps, 1),
        "routes": rows,
        "ramp": ramp_steps,
        "unexpected": [
            {"route": r, "status": s, "code": c, "count": n} for (r, s, c), n in phase.tally.unexpected().items()
        ],
        "crashes": phase.crashes,
        "invariants": [{"name": c.name, "checked": c.checked, "problems": c.problems} for c in checks],
    }
    path = ROOT / ".local" / "load" / "report.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nReport: {path}")
    errors = phase.tally.unexpected() + ramp.tally.unexpected()
    failed = bool(errors or phase.crashes or ramp.crashes or not all(check.ok for check in checks))
    print("Load test FAILED" if failed else "Load test passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
