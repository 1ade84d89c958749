"""Cold import time of every handler, each in a fresh process, against a bare boto3 client.

Run by `make bench`. Interleaves the runs so machine noise hits all of them alike; reports medians, slowest first,
with each one's spread and the machine's load, since a busy machine stretches the ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from infra.template import FUNCTIONS_DIR, load_template

ROUNDS = 7
BASELINE = "import boto3; boto3.client('dynamodb', region_name='eu-west-3')"
ENVIRONMENT = {
    "APP_TABLE": "bench-app",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "DOCUMENTS_BUCKET": "bench-documents",
    "AWS_REGION": "eu-west-3",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}


def _timed(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=FUNCTIONS_DIR,
        env={**os.environ, **ENVIRONMENT},
    )
    return float(result.stdout.strip().splitlines()[-1])


def test_cold_import_of_each_handler_against_boto3_baseline():
    functions = load_template().functions
    samples: dict[str, list[float]] = {"baseline": []} | {name: [] for name in functions}
    for _ in range(ROUNDS):
        samples["baseline"].append(_timed(BASELINE))
        for name, function in functions.items():
            samples[name].append(_timed(f"import {function.module}"))
    baseline = statistics.median(samples["baseline"])
    ratios = {name: statistics.median(samples[name]) / baseline for name in functions}
    print(f"\ncold import, median of {ROUNDS} fresh processes, against `{BASELINE}`")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end", end="")
    print("; project sources compiled at every import (PYTHONDONTWRITEBYTECODE)" if sys.dont_write_bytecode else "")
    print(f"  {'':40s} {'median':>7s}  {'min-max':>11s}  ratio")
    for name in ["baseline", *sorted(ratios, key=ratios.get, reverse=True)]:
        runs = samples[name]
        spread = f"{min(runs) * 1000:.0f}-{max(runs) * 1000:.0f} ms"
        ratio = "" if name == "baseline" else f"{ratios[name]:.2f}x"
        print(f"  {name:40s} {statistics.median(runs) * 1000:4.0f} ms  {spread:>11s}  {ratio}")
    print(f"  slowest: {max(ratios, key=ratios.get)} at {max(ratios.values()):.2f}x (goal <= 1.5x)")
    assert all(r > 0 for r in ratios.values())
