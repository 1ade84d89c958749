"""Cold import time of every handler on the Lambda runtime's Python, from the deployment artifact, against boto3.

Run by `make bench`. Every handler is imported in a fresh process of the runtime's Python version (template.yaml)
holding nothing but the artifact of make package, built for this machine's platform: the pinned runtime requirements
and the sources, compiled to bytecode beforehand, as deployed. The baseline, `import boto3` and one client, runs in
the same rounds. Each run counts the CPU time of its process (time.process_time), which other processes on a shared
machine change far less than the elapsed time; runs are interleaved so that the noise left hits all of them alike,
and the report gives medians, the slowest handler first, with each one's spread and the machine's load.

A row measures the fixed stack alone, what no API handler can go without (boto3, Powertools' Logger and HTTP
resolver, one pydantic model validated and written): what it leaves under the goal is all a handler's own modules
may take. The last row prices Powertools' Tracer with the X-Ray SDK it needs (at the development lock's pins): the
baseline, then Tracer() as a function would create it in Lambda, patching boto3. README, "Tracing", says what it
decided.

Then where the slowest handler's import goes, layer by layer (boto3, Powertools' package, its resolver, pydantic,
msp.metrics, the handler's own modules), each layer's statement added to the previous ones in fresh processes; and
what the business metrics cost: Powertools Metrics' share of its package's import (-X importtime, which only a
process's own report can split: the package imports Metrics whatever a handler uses), and a first metric line.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from pathlib import Path

from infra.dependency_audit import LOCK_FILES, locked_versions
from infra.package import (
    ARTIFACTS_DIR,
    artifact,
    compile_bytecode,
    install_wheels,
    local_target,
    run_in,
    runtime_environment,
    runtime_python,
)
from infra.template import ROOT, load_template

ROUNDS = 9
GOAL = 1.2
BASELINE = "import boto3; boto3.client('dynamodb', region_name='eu-west-3')"
TRACER = f"{BASELINE}; from aws_lambda_powertools import Tracer; Tracer()"
# What no API handler of this stack can go without: boto3, Powertools' logger and HTTP resolver, and pydantic with
# one model built, validated and written (the first model also loads pydantic's schema machinery).
FIXED_STACK = (
    "import boto3; from aws_lambda_powertools import Logger; "
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; from pydantic import BaseModel, Field; "
    "exec('class Page(BaseModel): size: int = Field(ge=1)'); Page(size=1).model_dump_json()"
)
TRACER_PACKAGES = ("aws-xray-sdk", "wrapt")
# The slowest handler's import, layer by layer: each statement runs after the ones above it.
LAYERS = (
    ("boto3", "import boto3"),
    ("Powertools' package (Logger, Metrics)", "import aws_lambda_powertools"),
    ("Powertools' event_handler", "import aws_lambda_powertools.event_handler"),
    ("pydantic's BaseModel", "from pydantic import BaseModel"),
    ("msp.metrics", "import msp.metrics"),
)
FIRST_LINE = (
    "import aws_lambda_powertools, msp.metrics, time; t = time.process_time(); "
    "msp.metrics.BusinessMetrics(service='bench').search_answered(3); print(time.process_time() - t)"
)


def _tracer_packages(python: Path) -> Path:
    """The X-Ray SDK and its own dependency, built and compiled like the artifact, in a folder of their own."""
    target = local_target()
    pins = locked_versions(LOCK_FILES)
    requirements = [f"{name}=={version}" for name in TRACER_PACKAGES for version in sorted(pins[name])]
    folder = ARTIFACTS_DIR / f"tracer-{target.runtime}-{target.platform}-{'-'.join(requirements)}"
    if not folder.is_dir():
        partial = folder.with_name(f"{folder.name}.partial")
        install_wheels(["--no-deps", *requirements], partial, target)
        compile_bytecode(partial, python)
        partial.rename(folder)
    return folder


def _timed(code: Path, python: Path, statement: str, environment: dict[str, str] | None = None) -> float:
    timing = f"import time; t = time.process_time(); {statement}; print(time.process_time() - t)"
    return float(run_in(code, python, timing, environment).splitlines()[-1])


def _metrics_share_of_powertools(code: Path, python: Path) -> tuple[float, float]:
    """(Powertools' package, its metrics subpackage): cumulative import time in seconds, from -X importtime."""
    result = subprocess.run(
        [str(python), "-B", "-X", "importtime", "-c", "import aws_lambda_powertools"],
        cwd=code,
        env=runtime_environment(code),
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative = {}
    for line in result.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if found:
            cumulative[found.group(2)] = int(found.group(1)) / 1e6
    return cumulative["aws_lambda_powertools"], cumulative["aws_lambda_powertools.metrics"]


def _layers_of(code: Path, python: Path, module: str, baseline: float) -> None:
    """Print what each layer of `module`'s import adds, in CPU time and as a share of the baseline."""
    layers = [*LAYERS, ("the handler's own modules", f"import {module}")]
    statements = ["; ".join(statement for _, statement in layers[: count + 1]) for count in range(len(layers))]
    samples: list[list[float]] = [[] for _ in layers]
    metrics_share: list[tuple[float, float]] = []
    first_line: list[float] = []
    for _ in range(ROUNDS):
        for index, statement in enumerate(statements):
            samples[index].append(_timed(code, python, statement))
        metrics_share.append(_metrics_share_of_powertools(code, python))
        first_line.append(float(run_in(code, python, FIRST_LINE).splitlines()[-1]))
    medians = [statistics.median(runs) for runs in samples]
    print(f"  {module}, layer by layer (each added to the ones above; CPU time, median of {ROUNDS}):")
    previous = 0.0
    for (label, _), median in zip(layers, medians, strict=True):
        added = median - previous
        print(f"    + {label:38s} {added * 1000:5.0f} ms  {added / baseline:+.2f}x")
        previous = median
    package, metrics = (statistics.median(parts) for parts in zip(*metrics_share, strict=True))
    emission = statistics.median(first_line)
    print(
        f"  Powertools Metrics: {metrics * 1000:.1f} ms of its package's {package * 1000:.0f} ms (-X importtime, wall),"
    )
    print(f"  imported by every handler using Powertools; a first metric line: {emission * 1e6:.0f} us of CPU")


def test_cold_import_of_each_handler_against_boto3_baseline():
    target = local_target()
    code = artifact(target)
    python = runtime_python(target.runtime)
    tracer = {"PYTHONPATH": str(_tracer_packages(python))}
    functions = load_template().functions
    extra = ("tracer", "fixed stack")
    samples: dict[str, list[float]] = {"baseline": []} | {name: [] for name in extra} | {name: [] for name in functions}
    for _ in range(ROUNDS):
        samples["baseline"].append(_timed(code, python, BASELINE))
        for name, function in functions.items():
            samples[name].append(_timed(code, python, f"import {function.module}"))
        samples["tracer"].append(_timed(code, python, TRACER, tracer))
        samples["fixed stack"].append(_timed(code, python, FIXED_STACK))
    medians = {name: statistics.median(runs) for name, runs in samples.items()}
    ratios = {name: medians[name] / medians["baseline"] for name in samples if name != "baseline"}
    slowest = max(functions, key=ratios.get)

    print(f"\n{target.runtime} from the compiled artifact ({code.relative_to(ROOT)}), ", end="")
    print(f"runtime pins only: cold import (CPU time), median of {ROUNDS} fresh processes, against `{BASELINE}`")
    verdict = "met" if ratios[slowest] <= GOAL else "NOT met"
    print(f"  slowest handler: {slowest} at {ratios[slowest]:.2f}x (goal <= {GOAL}x: {verdict})")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end")
    stack = ratios["fixed stack"]
    room = GOAL - stack
    print(f"  the fixed stack alone (boto3, Powertools' Logger and resolver, one pydantic model): {stack:.2f}x,")
    print(f"  leaving {room:+.2f}x ({room * medians['baseline'] * 1000:+.0f} ms) to a handler's own modules (goal);")
    print(f"  the slowest handler's own modules take {ratios[slowest] - stack:.2f}x")
    print(f"  {'':40s} {'median':>7s}  {'min-max':>11s}  ratio")
    labels = {"tracer": "baseline + Tracer() (X-Ray SDK)", "fixed stack": "the fixed stack alone"}
    for name in ["baseline", *sorted(functions, key=ratios.get, reverse=True), *extra]:
        runs = samples[name]
        spread = f"{min(runs) * 1000:.0f}-{max(runs) * 1000:.0f} ms"
        ratio = "" if name == "baseline" else f"{ratios[name]:.2f}x"
        label = labels.get(name, name)
        print(f"  {label:40s} {medians[name] * 1000:4.0f} ms  {spread:>11s}  {ratio}")
    cost = medians["tracer"] - medians["baseline"]
    print(f"  Tracer: +{cost * 1000:.0f} ms on a cold start; ", end="")
    print(f"with it the slowest handler would be at {(medians[slowest] + cost) / medians['baseline']:.2f}x")
    assert all(median > 0 for median in medians.values())
    _layers_of(code, python, functions[slowest].module, medians["baseline"])
