"""Every route of template.yaml × every role × own / foreign resource → the expected status.

The routes come from the template: a route added without a line in EXPECTED fails here, so no
route ships without its access rules being stated and checked. Each call gets fresh resources.

Roles: the psychologist (owner of "own" resources), a reviewer whose scope covers the resource's
department, a reviewer of another department, an admin, and a call without a token. Resources
live in department 75; "foreign" ones belong to another psychologist. For the session routes the
resource is an accepted candidature: "own" means the caller is conventioned (and declared the
session), "foreign" that another psychologist is. The listing and resignation routes address the caller's own
convention the same way.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.template import load_template
from msp.clock import programme_today
from tests.conftest import nir_for

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
    query: Callable[[], dict[str, str]] | None = None
    # More path values, made by the resource's owner before the call (e.g. a declared session).
    setup: Callable[[Any, Any], dict[str, str]] | None = None

    def status_for(self, role: str, resource: str) -> int:
        expected = self.expect[role]
        if isinstance(expected, tuple):
            return expected[0] if resource == "own" else expected[1]
        return expected


def _fields(_, unique_fields):
    return unique_fields()


_draw = random.SystemRandom()


def _patient() -> dict[str, str]:
    """A patient no other call uses (invented, well-formed NIR)."""
    place = f"{_draw.choice([d for d in range(1, 96) if d != 20]):02d}{_draw.randint(1, 999):03d}"
    nir = nir_for(dt.date(1990, 5, 14), sex=_draw.choice("12"), place=place, order=f"{_draw.randint(1, 999):03d}")
    return {"nir": nir, "birth_date": "1990-05-14"}


def _session_body(*_) -> dict:
    return {"patient": _patient(), "date": programme_today().isoformat()}


def _declared_session(api, candidature) -> dict[str, str]:
    owner = api.token("psychologist", sub=candidature.owner_sub)
    response = api.declare_session(owner, _session_body())
    assert response.status_code == 201, response.text
    return {"session_id": response.json()["session_id"]}


def _this_month() -> dict[str, str]:
    today = programme_today()
    return {"year": str(today.year), "month": str(today.month)}


# The caller's own things: every psychologist has an account, a statement and an export (empty or not); only the
# conventioned owner ("own") has a listing to read, edit or resign from.
OWN_ONLY = {
    "psychologist": (200, 403),
    "reviewer_in_scope": 403,
    "reviewer_out_of_scope": 403,
    "admin": 403,
    "anonymous": 401,
}
ANY_PSYCHOLOGIST = OWN_ONLY | {"psychologist": 200}

EXPECTED: dict[str, Case] = {
    "GET /v1/me": Case(expect=ANY_PSYCHOLOGIST),
    "GET /v1/me/export": Case(files=True, expect=ANY_PSYCHOLOGIST),
    "GET /v1/me/listing": Case(state="accepted", expect=OWN_ONLY),
    "PATCH /v1/me/listing": Case(
        state="accepted",
        body=lambda candidature, _: {"teleconsultation": False},
        headers={"If-Match": "1"},
        expect=OWN_ONLY,
    ),
    "POST /v1/convention/resign": Case(
        state="accepted",
        body=lambda candidature, _: {"effective_date": programme_today().isoformat()},
        expect=OWN_ONLY,
    ),
    "GET /v1/sessions": Case(state=None, query=_this_month, expect=ANY_PSYCHOLOGIST),
    "GET /v1/sessions/statement": Case(state=None, query=_this_month, expect=ANY_PSYCHOLOGIST),
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
    "POST /v1/sessions": Case(
        state="accepted",
        body=_session_body,
        headers={"Idempotency-Key": "fresh"},
        expect={
            "psychologist": (201, 403),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "POST /v1/sessions/quota": Case(
        state="accepted",
        body=lambda *_: _patient(),
        expect={
            "psychologist": (200, 403),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "POST /v1/admin/conventions": Case(
        state=None,
        body=lambda _, unique_fields: (
            unique_fields() | {"owner_sub": f"psy-imported-{uuid.uuid4().hex[:8]}", "convention_start": "2023-01-02"}
        ),
        headers={"Idempotency-Key": "fresh"},
        expect={
            "psychologist": 403,
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 201,
            "anonymous": 401,
        },
    ),
    # The psychologist addressed is the candidature's owner: the caller's own journal, or another's.
    "GET /v1/admin/psychologists/{psychologist_sub}/access-journal": Case(
        state="accepted",
        setup=lambda api, candidature: {"psychologist_sub": candidature.owner_sub},
        expect={
            "psychologist": 403,
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 200,
            "anonymous": 401,
        },
    ),
    "DELETE /v1/sessions/{session_id}": Case(
        state="accepted",
        setup=_declared_session,
        expect={
            "psychologist": (204, 404),
            "reviewer_in_scope": 403,
            "reviewer_out_of_scope": 403,
            "admin": 403,
            "anonymous": 401,
        },
    ),
    "GET /v1/stats": Case(
        state=None,
        # No tally has run in the shared test stack: reviewers and admins get the clear 404.
        expect={
            "psychologist": 403,
            "reviewer_in_scope": 404,
            "reviewer_out_of_scope": 404,
            "admin": 404,
            "anonymous": 401,
        },
    ),
    "GET /v1/openapi.json": Case(
        state=None,
        expect={role: 200 for role in ROLES},
    ),
    "GET /v1/psychologists/search": Case(
        state=None,
        query=lambda: {"lat": "48.8566", "lon": "2.3522", "radius_km": "5"},
        expect=dict.fromkeys(ROLES, 200),
    ),
    # Public: anyone reads a listed psychologist's profile, theirs or not.
    "GET /v1/psychologists/{psychologist_id}": Case(
        state="accepted",
        setup=lambda api, candidature: {"psychologist_id": candidature.id},
        expect=dict.fromkeys(ROLES, 200),
    ),
    "GET /v1/places": Case(
        state=None,
        query=lambda: {"q": "lyon"},
        expect=dict.fromkeys(ROLES, 200),
    ),
    # Public; no tally has run in the shared test stack: everyone gets the clear 404.
    "GET /v1/public/stats": Case(
        state=None,
        expect=dict.fromkeys(ROLES, 404),
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

ADMINS_ONLY = {
    "psychologist": 403,
    "reviewer_in_scope": 403,
    "reviewer_out_of_scope": 403,
    "admin": 200,
    "anonymous": 401,
}
EXPECTED |= {
    # Reviewer scopes: admins only; "own" and "foreign" do not apply (a fresh reviewer each call).
    "GET /v1/admin/reviewers/{reviewer_sub}/departments": Case(
        state=None, setup=lambda *_: {"reviewer_sub": f"rev-matrix-{uuid.uuid4().hex[:8]}"}, expect=ADMINS_ONLY
    ),
    "PUT /v1/admin/reviewers/{reviewer_sub}/departments": Case(
        state=None,
        setup=lambda *_: {"reviewer_sub": f"rev-matrix-{uuid.uuid4().hex[:8]}"},
        body=lambda *_: {"departments": [DEPARTMENT, "92"]},
        headers={"If-Match": "0"},
        expect=ADMINS_ONLY,
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

    candidature, values = None, {}
    if case.state is not None:
        owner = psychologist_sub if resource == "own" else f"psy-other-{uuid.uuid4().hex[:8]}"
        candidature = make_candidature(status=case.state, department=DEPARTMENT, owner_sub=owner, files=case.files)
        values = {"candidature_id": candidature.id, "document_id": candidature.documents[0].document_id}
    if case.setup:
        values |= case.setup(api, candidature)
    for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
        assert name in values, f"{route_key}: the matrix does not know how to fill {{{name}}}"
        path = path.replace(f"{{{name}}}", values[name])

    headers = {k: (str(uuid.uuid4()) if v == "fresh" else v) for k, v in case.headers.items()}
    body = case.body(candidature, unique_fields) if case.body else None
    params = case.query() if case.query else None
    token = _token(api, role, psychologist_sub)
    response = api.call(method, path, token=token, json=body, headers=headers, params=params)

    expected = case.status_for(role, resource)
    assert response.status_code == expected, f"{role} on {resource} {route_key}: {response.text}"
    if response.status_code >= 400 and response.status_code != 401:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"} and error["message"]
