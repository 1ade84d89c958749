"""Reviewer scopes and token grants, against an in-memory store."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from msp.auth import DEPARTMENTS_CLAIM, Caller, Role
from msp.errors import NotFound, RoleNotAllowed, VersionMismatch
from msp.reviewers.scope import (
    ReviewerScope,
    ScopeAssignment,
    ScopeChange,
    assign_departments,
    reviewer_scope,
)
from msp.reviewers.tokens import grant_for

ADMIN = Caller(sub="admin-1", roles=frozenset({Role.ADMIN}))
REVIEWER = Caller(sub="rev-1", roles=frozenset({Role.REVIEWER}), departments=frozenset({"*"}))


class MemoryScopes:
    def __init__(self):
        self.scopes: dict[str, ReviewerScope] = {}
        self.changes: list[ScopeChange] = []
        self.interloper: ReviewerScope | None = None  # written just before our replace, as a concurrent admin

    def scope(self, reviewer_sub):
        return self.scopes.get(reviewer_sub) or ReviewerScope(reviewer_sub=reviewer_sub, departments=[], version=0)

    def replace(self, scope, change):
        if self.interloper is not None:
            self.scopes[scope.reviewer_sub], self.interloper = self.interloper, None
        if self.scope(scope.reviewer_sub).version != change.version - 1:
            raise VersionMismatch("changed")
        self.scopes[scope.reviewer_sub] = scope
        self.changes.append(change)

    def history(self, reviewer_sub):
        return [c for c in self.changes if c.reviewer_sub == reviewer_sub]


def _assign(store, departments, version, caller=ADMIN):
    return assign_departments(store, caller, "rev-1", ScopeAssignment(departments=departments), version, "t")


def test_an_admin_assigns_and_each_change_is_recorded_from_and_to():
    store = MemoryScopes()
    assert _assign(store, ["92", "75"], 0).departments == ["75", "92"]
    assert _assign(store, ["2a"], 1).version == 2
    view = reviewer_scope(store, ADMIN, "rev-1")
    assert view.scope.departments == ["2A"] and view.scope.updated_by == "admin-1"
    moves = [(c.from_departments, c.to_departments) for c in view.history]
    assert moves == [([], ["75", "92"]), (["75", "92"], ["2A"])]


def test_only_admins_read_or_change_a_scope():
    store = MemoryScopes()
    with pytest.raises(RoleNotAllowed):
        _assign(store, ["75"], 0, caller=REVIEWER)
    with pytest.raises(RoleNotAllowed):
        reviewer_scope(store, REVIEWER, "rev-1")
    assert store.changes == []


def test_a_stale_version_or_a_concurrent_change_is_refused():
    store = MemoryScopes()
    _assign(store, ["75"], 0)
    with pytest.raises(VersionMismatch):
        _assign(store, ["13"], 0)
    store.interloper = ReviewerScope(reviewer_sub="rev-1", departments=["*"], version=2)
    with pytest.raises(VersionMismatch) as refused:
        _assign(store, ["13"], 1)
    assert refused.value.details == [{"expected_version": 1, "current_version": 2}]
    assert store.scope("rev-1").departments == ["*"]


@pytest.mark.parametrize("departments", [["20"], ["*", "75"], ["ABC"], [""]])
def test_unknown_departments_or_a_star_among_others_are_refused(departments):
    with pytest.raises(ValidationError):
        ScopeAssignment(departments=departments)


def test_a_malformed_reviewer_id_is_no_reviewer():
    with pytest.raises(NotFound):
        reviewer_scope(MemoryScopes(), ADMIN, "../x")


def _never():
    raise AssertionError("looked up for a user who is not staff")


def test_a_psychologists_token_needs_no_lookup():
    grant = grant_for(["psychologists"], has_second_factor=_never, assigned_departments=_never)
    assert grant.groups == ["psychologists"] and grant.access_token_claims() == {}


def test_a_reviewer_with_a_second_factor_gets_the_assigned_departments():
    grant = grant_for(["reviewers"], has_second_factor=lambda: True, assigned_departments=lambda: ["13", "75"])
    assert grant.groups == ["reviewers"] and grant.access_token_claims() == {DEPARTMENTS_CLAIM: ["13", "75"]}


def test_staff_groups_are_left_out_without_a_second_factor():
    grant = grant_for(
        ["admins", "reviewers", "psychologists"], has_second_factor=lambda: False, assigned_departments=_never
    )
    assert grant.groups == ["psychologists"] and grant.access_token_claims() == {}


def test_an_admin_gets_no_departments_claim():
    grant = grant_for(["admins"], has_second_factor=lambda: True, assigned_departments=_never)
    assert grant.groups == ["admins"] and grant.departments is None
