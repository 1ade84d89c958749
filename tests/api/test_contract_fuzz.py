"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis).

Every operation is called with generated requests under a token of each role (and none), against
the local gateway on DynamoDB Local: no server error, and every answer matches its documented
status codes, content type and schema. Fixed seed, bounded budget; `make fuzz` runs longer.
"""

from __future__ import annotations

import os
from collections import Counter

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

from msp.openapi import build_document

EXAMPLES_PER_OPERATION_AND_ROLE = int(os.environ.get("FUZZ_EXAMPLES", "40"))
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


def test_the_fuzzing_budget_was_spent():
    """Runs last in this module: the generated requests add up to at least 2,000."""
    total = sum(CALLS.values())
    print(f"\ncontract fuzzing: {total} generated requests over {len(CALLS)} operations")
    if EXAMPLES_PER_OPERATION_AND_ROLE >= 40:
        assert total >= 2000, f"only {total} generated requests"
    assert set(CALLS) == {f"{m} {p}" for p, m in OPERATIONS}
