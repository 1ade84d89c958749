"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis).

Every operation is called with generated requests under a token of each role (and none), against
the local gateway on DynamoDB Local: no server error, and every answer matches its documented
status codes, content type and schema. Then the schemathesis command runs all its phases (examples,
coverage, fuzzing, stateful) under each role: the coverage phase's deliberately wrong requests (methods
the API does not declare, such as TRACE, missing or malformed parameters and bodies) get no server error
either. Fixed seeds, bounded budgets; `make fuzz` runs longer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra.template import FUNCTIONS_DIR
from msp.openapi import build_document

EXAMPLES_PER_OPERATION_AND_ROLE = int(os.environ.get("FUZZ_EXAMPLES", "40"))
# The command's fuzzing and stateful phases; the coverage phase's requests do not depend on it.
PHASE_EXAMPLES = int(os.environ.get("FUZZ_PHASE_EXAMPLES", "5"))
ALL_PHASES = "examples,coverage,fuzzing,stateful"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SCHEMA = schemathesis.openapi.from_dict(build_document())
OPERATIONS = [(op.path, op.method.upper()) for op in (r.ok() for r in SCHEMA.get_all_operations())]
ROLES = ("psychologist", "reviewer", "admin", "anonymous")
CALLS: Counter[str] = Counter()


def _token(api, role: str) -> str | None:
    if role == "anonymous":
        return None
    return api.token(role, sub=f"fuzz-{role}", departments="75,13" if role == "reviewer" else None)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_generated_requests_get_documented_answers(api, path, method, role):
    operation = SCHEMA[path][method]
    token = _token(api, role)
    session = requests.Session()

    @seed(20261123)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_ROLE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if "Authorization" in (case.headers or {}):
            case.headers.pop("Authorization")
        response = case.call(base_url=api.base_url, session=session, headers=headers, timeout=30)
        CALLS[f"{method} {path}"] += 1
        case.validate_response(response, checks=CHECKS)

    run()


@pytest.mark.parametrize("role", ROLES)
def test_every_schemathesis_phase_finds_no_server_error(api, role, tmp_path):
    token = _token(api, role)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        str(FUNCTIONS_DIR / "openapi.json"),  # the committed document, equal to the built one (test_openapi)
        f"--url={api.base_url}",
        f"--phases={ALL_PHASES}",
        "--checks=not_a_server_error",
        f"--max-examples={PHASE_EXAMPLES}",
        "--seed=20261123",
        "--workers=2",
        "--no-color",
        *([f"--header=Authorization: Bearer {token}"] if token else []),
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"✅ Coverage", run.stdout) and re.search(r"✅ Fuzzing", run.stdout), run.stdout[-3000:]
    generated = re.search(r"(\d+) generated, \1 passed", run.stdout)
    assert generated and int(generated[1]) >= 1000, run.stdout[-3000:]  # about 1,300 per role


def test_the_fuzzing_budget_was_spent():
    """Runs last in this module: the generated requests add up to at least 2,000."""
    total = sum(CALLS.values())
    print(f"\ncontract fuzzing: {total} generated requests over {len(CALLS)} operations")
    if EXAMPLES_PER_OPERATION_AND_ROLE >= 40:
        assert total >= 2000, f"only {total} generated requests"
    assert set(CALLS) == {f"{m} {p}" for p, m in OPERATIONS}
