"""Reviewer scopes: only admins change them, every change is audited, and a change reaches the reviewer with their
next token, never through anything the reviewer writes about themselves.

Tokens come from the dev issuer, which runs the user pool's token trigger of template.yaml on the V2 event
Cognito sends: what it signs is what Cognito would issue.
"""

from __future__ import annotations

import uuid

import jwt
import pytest

from msp.auth import DEPARTMENTS_CLAIM


def _path(reviewer_sub: str) -> str:
    return f"/v1/admin/reviewers/{reviewer_sub}/departments"


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def admin(api):
    return api.token("admin", sub=f"admin-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def reviewer_sub():
    return f"rev-{uuid.uuid4().hex[:10]}"


def _assign(api, admin: str, reviewer_sub: str, departments: list[str], version: int):
    return api.call(
        "PUT", _path(reviewer_sub), token=admin, json={"departments": departments}, headers={"If-Match": str(version)}
    )


def _reads(api, token: str, candidature) -> int:
    return api.call("GET", f"/v1/candidatures/{candidature.id}", token=token).status_code


def test_a_new_scope_reaches_the_reviewer_with_their_next_token_not_before(api, admin, reviewer_sub, make_candidature):
    in_75, in_13 = make_candidature(department="75"), make_candidature(department="13")
    assert _assign(api, admin, reviewer_sub, ["75"], 0).status_code == 200
    before = api.issuer.mint("reviewer", sub=reviewer_sub)
    assert _claims(before)[DEPARTMENTS_CLAIM] == ["75"]
    assert (_reads(api, before, in_75), _reads(api, before, in_13)) == (200, 404)

    changed = _assign(api, admin, reviewer_sub, ["13"], 1)
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    assert changed.json() | {"updated_at": None} == {
        "reviewer_sub": reviewer_sub,
        "departments": ["13"],
        "version": 2,
        "updated_at": None,
        "updated_by": _claims(admin)["sub"],
    }
    # The token issued before the change keeps the scope it carries until it expires...
    assert (_reads(api, before, in_75), _reads(api, before, in_13)) == (200, 404)
    # ...the next one has the new scope.
    after = api.issuer.mint("reviewer", sub=reviewer_sub)
    assert _claims(after)[DEPARTMENTS_CLAIM] == ["13"]
    assert (_reads(api, after, in_75), _reads(api, after, in_13)) == (404, 200)

    revoked = _assign(api, admin, reviewer_sub, [], 2)
    assert revoked.status_code == 200
    emptied = api.issuer.mint("reviewer", sub=reviewer_sub)
    assert _claims(emptied)[DEPARTMENTS_CLAIM] == []
    assert (_reads(api, emptied, in_75), _reads(api, emptied, in_13)) == (404, 404)


def test_a_reviewers_own_attribute_change_has_no_effect(api, admin, reviewer_sub, make_candidature):
    """What UpdateUserAttributes would have let a reviewer write reaches the trigger and is ignored."""
    elsewhere = make_candidature(department="13")
    assert _assign(api, admin, reviewer_sub, ["75"], 0).status_code == 200
    widened = api.issuer.mint("reviewer", sub=reviewer_sub, attributes={"custom:departments": "*"})
    claims = _claims(widened)
    assert claims[DEPARTMENTS_CLAIM] == ["75"] and "custom:departments" not in claims
    assert _reads(api, widened, elsewhere) == 404
    queue = api.call("GET", "/v1/review/candidatures", token=widened, params={"department": "13"})
    assert queue.status_code == 403
    # Nor can a reviewer assign themselves anything through the API.
    assert _assign(api, widened, reviewer_sub, ["*"], 1).status_code == 403
    assert api.call("GET", _path(reviewer_sub), token=admin).json()["scope"]["departments"] == ["75"]


def test_every_change_is_audited_with_who_changed_whose_scope_from_what_to_what(api, admin, reviewer_sub):
    other_admin = api.token("admin", sub=f"admin-{uuid.uuid4().hex[:6]}")
    unassigned = api.call("GET", _path(reviewer_sub), token=admin)
    assert unassigned.status_code == 200 and unassigned.headers["ETag"] == '"0"'
    assert unassigned.json() == {
        "scope": {
            "reviewer_sub": reviewer_sub,
            "departments": [],
            "version": 0,
            "updated_at": None,
            "updated_by": None,
        },
        "history": [],
    }
    _assign(api, admin, reviewer_sub, ["92", "75", "75"], 0)
    _assign(api, other_admin, reviewer_sub, ["*"], 1)
    view = api.call("GET", _path(reviewer_sub), token=admin).json()
    assert view["scope"]["departments"] == ["*"] and view["scope"]["version"] == 2
    assert [(c["version"], c["actor"], c["from_departments"], c["to_departments"]) for c in view["history"]] == [
        (1, _claims(admin)["sub"], [], ["75", "92"]),
        (2, _claims(other_admin)["sub"], ["75", "92"], ["*"]),
    ]
    assert all(c["at"] for c in view["history"])


def test_a_change_needs_the_version_read_and_valid_departments(api, admin, reviewer_sub):
    missing = api.call("PUT", _path(reviewer_sub), token=admin, json={"departments": ["75"]})
    assert missing.status_code == 428
    assert _assign(api, admin, reviewer_sub, ["75"], 0).status_code == 200
    stale = _assign(api, admin, reviewer_sub, ["13"], 0)
    assert stale.status_code == 412 and stale.json()["error"]["details"][0]["current_version"] == 1
    for bad in (["20"], ["*", "75"], ["7500"], "75"):
        answer = api.call("PUT", _path(reviewer_sub), token=admin, json={"departments": bad}, headers={"If-Match": "1"})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"]["details"][0]["field"].startswith("departments")
    assert api.call("GET", _path("not a sub!"), token=admin).status_code == 404


def test_staff_without_a_second_factor_get_no_staff_role(api, admin, reviewer_sub, make_candidature):
    candidature = make_candidature(department="75")
    assert _assign(api, admin, reviewer_sub, ["75"], 0).status_code == 200
    password_only = api.issuer.mint("reviewer", sub=reviewer_sub, second_factor=False)
    claims = _claims(password_only)
    assert "cognito:groups" not in claims and DEPARTMENTS_CLAIM not in claims
    assert _reads(api, password_only, candidature) == 403
    assert api.call("GET", "/v1/review/candidatures", token=password_only).status_code == 403
    admin_without = api.issuer.mint("admin", sub=f"admin-{uuid.uuid4().hex[:6]}", second_factor=False)
    assert api.call("GET", _path(reviewer_sub), token=admin_without).status_code == 403
    # Once the second factor is set up, the next token carries the role again.
    with_mfa = api.issuer.mint("reviewer", sub=reviewer_sub)
    assert _claims(with_mfa)["cognito:groups"] == ["reviewers"] and _reads(api, with_mfa, candidature) == 200


def test_psychologists_sign_in_without_a_second_factor(api, psychologist):
    sub, _ = psychologist
    token = api.issuer.mint("psychologist", sub=sub, second_factor=False)
    assert _claims(token)["cognito:groups"] == ["psychologists"] and DEPARTMENTS_CLAIM not in _claims(token)
