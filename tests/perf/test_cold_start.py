"""Cold import time of every handler, each in a fresh process, against a bare boto3 client.

Run by `make bench`. Interleaves the runs so machine noise hits all of them alike; reports medians, slowest first,
with each one's spread and the machine's load, since a busy machine stretches the ratios.

The goal is measured on the Python version of the functions' Lambda runtime (template.yaml), in a virtualenv of
exactly the deployed requirements (functions/requirements.txt) made under .tools/; the development interpreter's
figures follow for reference. Where that Python version is not installed, only the development interpreter is
measured, and the report says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from infra.template import FUNCTIONS_DIR, load_template

ROOT = Path(__file__).resolve().parents[2]

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


def _interpreter(version: str) -> str | None:
    """A working `python<version>`: on PATH, else among pyenv's installed versions."""
    candidates = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(map(str, Path(root).glob(f"versions/{version}.*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def _runtime_python(runtime: str) -> str | None:
    """An interpreter of the Lambda runtime's Python version with only the deployed requirements, or None."""
    interpreter = _interpreter(runtime.removeprefix("python"))
    if interpreter is None:
        return None
    requirements = FUNCTIONS_DIR / "requirements.txt"
    venv = ROOT / ".tools" / "runtime" / runtime
    python = venv / "bin" / "python"
    stamp = venv / ".requirements-sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if not python.exists() or not stamp.exists() or stamp.read_text() != digest:
        print(f"\nbuilding {venv.relative_to(ROOT)} ({interpreter}) from {requirements.relative_to(ROOT)} ...")
        subprocess.run([interpreter, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
        stamp.write_text(digest)
    return str(python)


def _timed(python: str, statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=FUNCTIONS_DIR,
        env={**os.environ, **ENVIRONMENT},
    )
    return float(result.stdout.strip().splitlines()[-1])


def _measure(python: str, label: str) -> float:
    """Print the handlers' cold imports against the baseline on `python`; the slowest ratio."""
    functions = load_template().functions
    samples: dict[str, list[float]] = {"baseline": []} | {name: [] for name in functions}
    for _ in range(ROUNDS):
        samples["baseline"].append(_timed(python, BASELINE))
        for name, function in functions.items():
            samples[name].append(_timed(python, f"import {function.module}"))
    baseline = statistics.median(samples["baseline"])
    ratios = {name: statistics.median(samples[name]) / baseline for name in functions}
    print(f"\n{label}: cold import, median of {ROUNDS} fresh processes, against `{BASELINE}`")
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end", end="")
    print("; project sources compiled at every import, as in Lambda" if sys.dont_write_bytecode else "")
    print(f"  {'':40s} {'median':>7s}  {'min-max':>11s}  ratio")
    for name in ["baseline", *sorted(ratios, key=ratios.get, reverse=True)]:
        runs = samples[name]
        spread = f"{min(runs) * 1000:.0f}-{max(runs) * 1000:.0f} ms"
        ratio = "" if name == "baseline" else f"{ratios[name]:.2f}x"
        print(f"  {name:40s} {statistics.median(runs) * 1000:4.0f} ms  {spread:>11s}  {ratio}")
    print(f"  slowest: {max(ratios, key=ratios.get)} at {max(ratios.values()):.2f}x")
    return max(ratios.values())


def test_cold_import_of_each_handler_against_boto3_baseline():
    (runtime,) = {function.runtime for function in load_template().functions.values()}
    development = f"python{sys.version_info.major}.{sys.version_info.minor}"
    deployed = _runtime_python(runtime)
    if deployed is None:
        print(f"\n{runtime} (the functions' Lambda runtime) is not installed: measured on {development} only")
    else:
        slowest = _measure(deployed, f"{runtime}, the Lambda runtime, deployed requirements only")
        print(f"  goal <= 1.5x on the Lambda runtime's Python: {'met' if slowest <= 1.5 else 'NOT met'}")
    slowest_here = _measure(sys.executable, f"{development}, the development virtualenv (for reference)")
    assert slowest_here > 0
