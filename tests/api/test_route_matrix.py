"""Every route of template.yaml × every role × own / foreign resource → the expected status.

The routes come from the template: a route added without a line in EXPECTED fails here, so no
route ships without its access rules being stated and checked. Each call gets fresh resources.

Roles: the psychologist (owner of "own" resources), a reviewer whose scope covers the resource's
department, a reviewer of another department, an admin, and a call without a token. Resources
live in department 75; "foreign" ones belong to another psychologist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.template import load_template

ROLES = ("psychologist", "reviewer_in_scope", "reviewer_out_of_scope", "admin", "anonymous")
RESOURCES = ("own", "foreign")
DEPARTMENT, OTHER_DEPARTMENT = "75", "13"


@dataclass(frozen=True)
class Case:
    """How to call a route and what each role gets: a status, or (own, foreign) when they differ."""

    expect: dict[str, int | tuple[int, int]]
    state: str | None = "submitted"  # status of the candidature addressed; None: the route addresses none
    files: bool = False
    body: Callable[[Any, Callable], dict] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def status_for(self, role: str, resource: str) -> int:
        expected = self.expect[role]
        if isinstance(expected, tuple):
            return expected[0] if resource == "own" else expected[1]
        return expected


def _fields(_, unique_fields):
    return unique_fields()


EXPECTED: dict[str, Case] = {
    "POST /v1/candidatures": Case(
        state=None,
        body=_fields,
        headers={"Idempotency-Key": "fresh"},
        expect={
            "psychologist": 201,
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "GET /v1/candidatures/{candidature_id}": Case(
        expect={
            "psychologist": (200, 404),
            "reviewer_in_scope": 200,
            "reviewer_out_of_scope": 404,
            "admin": 200,
            "anonymous": 401,
        },
    ),
    "PATCH /v1/candidatures/{candidature_id}": Case(
        state="info_requested",
        body=lambda candidature, _: {"experience_years": 3},
        headers={"If-Match": "1"},
        expect={
            "psychologist": (200, 404),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "POST /v1/candidatures/{candidature_id}/documents": Case(
        state="draft",
        body=lambda candidature, _: {"kind": "diploma", "content_type": "application/pdf", "size": 1000},
        expect={
            "psychologist": (201, 404),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "GET /v1/candidatures/{candidature_id}/documents/{document_id}": Case(
        files=True,
        expect={
            "psychologist": (200, 404),
            "reviewer_in_scope": 200,
            "reviewer_out_of_scope": 404,
            "admin": 200,
            "anonymous": 401,
        },
    ),
    "GET /v1/candidatures/{candidature_id}/history": Case(
        expect={
            "psychologist": 403,
            "reviewer_in_scope": 200,
            "reviewer_out_of_scope": 404,
            "admin": 200,
            "anonymous": 401,
        },
    ),
    "POST /v1/candidatures/{candidature_id}/submit": Case(
        state="info_requested",
        expect={
            "psychologist": (200, 404),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "POST /v1/candidatures/{candidature_id}/transitions": Case(
        body=lambda candidature, _: {"action": "start_review", "expected_version": candidature.version},
        expect={
            "psychologist": 403,
            "reviewer_in_scope": 200,
            "reviewer_out_of_scope": 404,
            "admin": 200,
            "anonymous": 401,
        },
    ),
    "POST /v1/candidatures/{candidature_id}/withdraw": Case(
        expect={
            "psychologist": (200, 404),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "GET /v1/review/candidatures": Case(
        state=None,
        expect={
            "psychologist": 403,
            "reviewer_in_scope": 200,
            "reviewer_out_of_scope": 200,
            "admin": 200,
            "anonymous": 401,
        },
    ),
}

TEMPLATE_ROUTES = [route.route_key for route in load_template().routes]


def _token(api, role: str, psychologist_sub: str) -> str | None:
    return {
        "psychologist": lambda: api.token("psychologist", sub=psychologist_sub),
        "reviewer_in_scope": lambda: api.token("reviewer", departments=f"{DEPARTMENT},92"),
        "reviewer_out_of_scope": lambda: api.token("reviewer", departments=OTHER_DEPARTMENT),
        "admin": lambda: api.token("admin"),
        "anonymous": lambda: None,
    }[role]()


def test_every_expectation_names_a_route_of_the_template():
    stale = sorted(set(EXPECTED) - set(TEMPLATE_ROUTES))
    assert not stale, f"expectations for routes no longer in template.yaml: {stale}"


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route_key", TEMPLATE_ROUTES)
def test_route_answers_each_role_as_expected(api, make_candidature, unique_fields, route_key, role, resource):
    assert route_key in EXPECTED, f"{route_key} is in template.yaml but not in the access matrix: add it to EXPECTED"
    case = EXPECTED[route_key]
    assert set(case.expect) == set(ROLES), f"{route_key}: state the expected status of every role"
    method, path = route_key.split(" ", 1)
    psychologist_sub = f"psy-matrix-{uuid.uuid4().hex[:8]}"

    candidature = None
    if case.state is not None:
        owner = psychologist_sub if resource == "own" else f"psy-other-{uuid.uuid4().hex[:8]}"
        candidature = make_candidature(status=case.state, department=DEPARTMENT, owner_sub=owner, files=case.files)
        values = {"candidature_id": candidature.id, "document_id": candidature.documents[0].document_id}
        for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
            assert name in values, f"{route_key}: the matrix does not know how to fill {{{name}}}"
            path = path.replace(f"{{{name}}}", values[name])

    headers = {k: (str(uuid.uuid4()) if v == "fresh" else v) for k, v in case.headers.items()}
    body = case.body(candidature, unique_fields) if case.body else None
    response = api.call(method, path, token=_token(api, role, psychologist_sub), json=body, headers=headers)

    expected = case.status_for(role, resource)
    assert response.status_code == expected, f"{role} on {resource} {route_key}: {response.text}"
    if response.status_code >= 400 and response.status_code != 401:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"} and error["message"]
