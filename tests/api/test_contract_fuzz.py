"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis).

Every operation is called with generated requests under a token of each role (and none), against
the local gateway on DynamoDB Local: no server error, and every answer matches its documented
status codes, content type and schema. Then the schemathesis command runs all its phases (examples,
coverage, fuzzing, stateful) under each role: the coverage phase's deliberately wrong requests (methods
the API does not declare, such as TRACE, missing or malformed parameters and bodies) get no server error
either. Fixed seeds, bounded budgets; `make fuzz` runs longer.

The generated requests follow what the document says in words (contract_rules), and no operation may
"mostly reject generated data" by schemathesis' own measure: a document looser than the API shows there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.cli.commands.run.warnings import StatusCodeStatistic
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra.template import FUNCTIONS_DIR
from msp.openapi import build_document
from tests.api import contract_rules

EXAMPLES_PER_OPERATION_AND_ROLE = int(os.environ.get("FUZZ_EXAMPLES", "40"))
# The command's fuzzing and stateful phases; the coverage phase's requests do not depend on it.
PHASE_EXAMPLES = int(os.environ.get("FUZZ_PHASE_EXAMPLES", "5"))
ALL_PHASES = "examples,coverage,fuzzing,stateful"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SCHEMA = schemathesis.openapi.from_dict(build_document())
SCHEMA.hook(contract_rules.map_case)
OPERATIONS = [(op.path, op.method.upper()) for op in (r.ok() for r in SCHEMA.get_all_operations())]
ROLES = ("psychologist", "reviewer", "admin", "anonymous")
CALLS: Counter[str] = Counter()
HOSTILE_CALLS: Counter[str] = Counter()


def _token(api, role: str) -> str | None:
    if role == "anonymous":
        return None
    return api.token(role, sub=f"fuzz-{role}", departments="75,13" if role == "reviewer" else None)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_generated_requests_get_documented_answers(api, conventioned, path, method, role):
    operation = SCHEMA[path][method]
    # A conventioned psychologist, so that generated declarations can be accepted.
    token = conventioned()[1] if role == "psychologist" else _token(api, role)
    session = requests.Session()
    statuses: Counter[int] = Counter()

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
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()
    # Schemathesis' rule for its "mostly rejected generated data" warning: every answer a client error, and
    # at least a tenth of them refusing the data (not 401, 403, 404, 409 or 429, which say nothing of it).
    mismatch = StatusCodeStatistic(counts=dict(statuses), total=statuses.total())
    assert not mismatch.should_warn_about_validation_mismatch(), f"mostly rejected generated data: {dict(statuses)}"


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
        # One worker: CPython 3.11 can crash inside schemathesis (SystemError: AST constructor recursion depth
        # mismatch) when its coverage phase builds schemas on two threads at once.
        "--workers=1",
        "--no-color",
        *([f"--header=Authorization: Bearer {token}"] if token else []),
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"✅ Coverage", run.stdout) and re.search(r"✅ Fuzzing", run.stdout), run.stdout[-3000:]
    generated = re.search(r"(\d+) generated, \1 passed", run.stdout)
    assert generated and int(generated[1]) >= 1000, run.stdout[-3000:]  # about 1,300 per role


# ---------------------------------------------------------------- hostile inputs
#
# Schemathesis draws values that fit the documented schema, or break it in ways it knows. The inputs below broke
# handlers before: a Unicode digit in a header ("²" passes str.isdigit() and then int() fails), bodies nested past
# the parser's recursion limit, values far larger than any field takes. Every header and query parameter an
# operation reads gets them, and every operation with a body gets deep and oversized bodies: the answer is a 4xx
# with the usual error body (or API Gateway's own), never a 5xx.

HOSTILE_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40")) // 2
# Latin-1 ones reach a handler as themselves through any client; the others as UTF-8.
_NON_ASCII_DIGITS = st.one_of(
    st.sampled_from("²³¹¼½¾"),
    st.characters(categories=["Nd", "No"]).filter(lambda c: not c.isascii()),
)
_HOSTILE_VALUES = st.one_of(
    st.text(_NON_ASCII_DIGITS, min_size=1, max_size=12),
    st.tuples(st.integers(0, 9), _NON_ASCII_DIGITS).map(lambda pair: f"{pair[0]}{pair[1]}"),
    _NON_ASCII_DIGITS.map(lambda digit: f'W/"{digit}"'),
    st.integers(10, 8000).map(lambda size: "9" * size),
    st.integers(129, 8000).map(lambda size: "k" * size),
    st.sampled_from(["-1", "0", "+1", " 1 ", "1e3", "0x10", "1_000", "NaN", "∞", "1.5", "", '""', "W/"]),
)


def _header_safe(value: str) -> bytes:
    """What a client can put on the wire: latin-1 where it fits (so "²" arrives as "²"), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _nested(depth: int, container: str) -> str:
    return ("[" * depth + "]" * depth) if container == "array" else ('{"a":' * depth + "1" + "}" * depth)


def _body_fields(operation: dict) -> list[str]:
    if "requestBody" not in operation:
        return []
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return sorted(DOCUMENT["components"]["schemas"][reference.rsplit("/", 1)[1]].get("properties", {}))


def _hostile_places() -> list[tuple[str, str, str, str]]:
    """(path, method, where, name): every header and query parameter an operation reads, and its body."""
    places = []
    for path, method in OPERATIONS:
        operation = DOCUMENT["paths"][path][method.lower()]
        # Besides the documented headers: the body's type, the token, and Accept (the search and the statement
        # choose their representation by it).
        places += [(path, method, "header", name) for name in ["Content-Type", "Authorization", "Accept"]]
        places += [
            (path, method, p["in"], p["name"]) for p in operation["parameters"] if p["in"] in {"header", "query"}
        ]
        if "requestBody" in operation:
            places.append((path, method, "body", ""))
    return places


def _hostile_body(fields: list[str]):
    nested = st.builds(_nested, st.integers(2, 100_000), st.sampled_from(["array", "object"]))
    field = st.sampled_from(fields or ["unknown"])
    return st.one_of(
        nested,
        st.builds(lambda name, inner: f'{{"{name}": {inner}}}', field, nested),
        st.builds(lambda name, size: json.dumps({name: "é" * size}), field, st.integers(1_000, 60_000)),
        st.builds(lambda name, size: json.dumps({name: "9" * size}), field, st.integers(20, 5_000)),
    )


DOCUMENT = build_document()
HOSTILE_PLACES = _hostile_places()


@pytest.mark.parametrize(
    ("path", "method", "where", "name"), HOSTILE_PLACES, ids=[f"{m} {p} {w} {n}" for p, m, w, n in HOSTILE_PLACES]
)
def test_hostile_headers_query_and_bodies_get_a_4xx(api, path, method, where, name):
    tokens = {role: (None if role == "anonymous" else _token(api, role)) for role in ROLES}
    url = api.base_url + re.sub(r"\{[^}]+\}", "fuzz-0001", path)
    fields = _body_fields(DOCUMENT["paths"][path][method.lower()])
    session = requests.Session()

    @seed(20261124)
    @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        role=st.sampled_from(ROLES),
        hostile=_hostile_body(fields) if where == "body" else _HOSTILE_VALUES,
    )
    def run(role, hostile):
        headers: dict[str, bytes | str] = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
            "If-Match": "1",
        }
        if tokens[role]:
            headers["Authorization"] = f"Bearer {tokens[role]}"
        params, data = {}, ("{}" if method in {"POST", "PATCH", "PUT"} else None)
        if where == "header":
            headers[name] = _header_safe(hostile)
        elif where == "query":
            params[name] = hostile
        else:
            data = hostile
        response = session.request(method, url, headers=headers, params=params, data=data, timeout=30)
        HOSTILE_CALLS[f"{method} {path}"] += 1
        assert response.status_code < 500, f"{role}, {where} {name}: {response.text}"
        if response.status_code >= 400:
            answer = response.json()
            assert "message" in answer or set(answer["error"]) == {"code", "message", "details"}, answer

    run()


def test_the_fuzzing_budget_was_spent():
    """Runs last in this module: the generated requests add up to at least 2,000."""
    total = sum(CALLS.values())
    print(
        f"\ncontract fuzzing: {total} generated requests over {len(CALLS)} operations, "
        f"{sum(HOSTILE_CALLS.values())} hostile ones"
    )
    if EXAMPLES_PER_OPERATION_AND_ROLE >= 40:
        assert total >= 2000, f"only {total} generated requests"
    assert set(CALLS) == set(HOSTILE_CALLS) == {f"{m} {p}" for p, m in OPERATIONS}
