from __future__ import annotations

import pytest

from msp.auth import DEPARTMENTS_CLAIM, Caller, Role
from msp.errors import NotAuthenticated, RoleNotAllowed


def test_flattened_claims_from_api_gateway_are_understood():
    caller = Caller.from_claims({"sub": "u1", "cognito:groups": "[reviewers admins]", DEPARTMENTS_CLAIM: "75,2A"})
    assert caller.roles == {Role.REVIEWER, Role.ADMIN}
    assert caller.departments == {"75", "2A"}


def test_list_claims_and_unknown_groups():
    caller = Caller.from_claims({"sub": "u1", "cognito:groups": ["psychologists", "hackers"]})
    assert caller.roles == {Role.PSYCHOLOGIST}


def test_reviewer_scope():
    reviewer = Caller.from_claims({"sub": "r", "cognito:groups": "[reviewers]", DEPARTMENTS_CLAIM: "75, 92"})
    assert reviewer.covers_department("92") and not reviewer.covers_department("13")
    national = Caller.from_claims({"sub": "r", "cognito:groups": "[reviewers]", DEPARTMENTS_CLAIM: "*"})
    assert national.covers_department("971")
    admin = Caller.from_claims({"sub": "a", "cognito:groups": "[admins]"})
    assert admin.covers_department("2B")
    psychologist = Caller.from_claims({"sub": "p", "cognito:groups": "[psychologists]", DEPARTMENTS_CLAIM: "*"})
    assert not psychologist.covers_department("75")


def test_missing_claims_and_wrong_role():
    with pytest.raises(NotAuthenticated):
        Caller.from_claims(None)
    with pytest.raises(NotAuthenticated):
        Caller.from_claims({"cognito:groups": "[admins]"})
    with pytest.raises(RoleNotAllowed):
        Caller.from_claims({"sub": "x", "cognito:groups": "[reviewers]"}).require(Role.PSYCHOLOGIST)


def test_only_the_assigned_departments_claim_scopes_a_reviewer():
    """A reviewer's own Cognito attribute is no scope: only the claim the token trigger writes is read."""
    reviewer = Caller.from_claims({"sub": "r", "cognito:groups": "[reviewers]", "custom:departments": "*"})
    assert reviewer.departments == frozenset() and not reviewer.covers_department("75")


def test_an_id_token_is_refused():
    with pytest.raises(NotAuthenticated):
        Caller.from_claims({"sub": "r", "token_use": "id", "cognito:groups": "[admins]"})
    assert Caller.from_claims({"sub": "r", "token_use": "access", "cognito:groups": "[admins]"}).has(Role.ADMIN)
