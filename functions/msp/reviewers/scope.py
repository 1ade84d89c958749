"""Admins assign each reviewer's departments; every change is recorded with who made it, from what, to what.

The assignment is the only source of a reviewer's scope: the token trigger (tokens.py) copies it into the
access token, and nothing a reviewer can write about themselves (a Cognito attribute) is ever read. A change
reaches the reviewer with their next token, never before: tokens already issued keep the scope they carry.
"""

from __future__ import annotations

import re
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from msp import geography
from msp.auth import ALL_DEPARTMENTS, Caller, Role
from msp.documented import Documented
from msp.errors import NotFound, VersionMismatch

# A Cognito user's sub is a UUID; the local stack's dev users have readable ids.
SUB_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_SUB = re.compile(SUB_PATTERN)
Department = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, max_length=3),
    Documented(
        enum=[*sorted(geography.DEPARTMENTS), ALL_DEPARTMENTS],
        description="A department code (letters in either case), or * alone for every department.",
    ),
]


class ScopeAssignment(BaseModel):
    """PUT body: the departments the reviewer reviews from now on ([] revokes them all, ["*"] is national)."""

    # Not the candidature models' Strict: the token trigger loads this module and nothing of candidatures.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    departments: list[Department] = Field(max_length=len(geography.DEPARTMENTS))

    @field_validator("departments")
    @classmethod
    def _known_departments(cls, departments: list[str]) -> list[str]:
        unknown = sorted(d for d in set(departments) if d not in geography.DEPARTMENTS and d != ALL_DEPARTMENTS)
        if unknown:
            raise ValueError(f"unknown departments {', '.join(unknown)}: use 01 to 95, 2A, 2B, 971 to 976, or * alone")
        if ALL_DEPARTMENTS in departments and len(set(departments)) > 1:
            raise ValueError("* already means every department: send it alone")
        return sorted(set(departments))


class ReviewerScope(BaseModel):
    """A reviewer's departments; version 0 is a reviewer never assigned any."""

    reviewer_sub: str
    departments: list[str]
    version: int = Field(ge=0)
    updated_at: str | None = None
    updated_by: str | None = None


class ScopeChange(BaseModel):
    """One audited change: who set whose departments, from what, to what."""

    reviewer_sub: str
    version: int = Field(ge=1)
    actor: str
    from_departments: list[str]
    to_departments: list[str]
    at: str


class ScopeView(BaseModel):
    scope: ReviewerScope
    history: list[ScopeChange]


class ScopeStore(Protocol):
    def scope(self, reviewer_sub: str) -> ReviewerScope:
        """The reviewer's current assignment (version 0, no department, when never assigned)."""
        ...

    def replace(self, scope: ReviewerScope, change: ScopeChange) -> None:
        """Write `scope` and its change together, if the stored version is still `change.version - 1`;
        VersionMismatch otherwise."""
        ...

    def history(self, reviewer_sub: str) -> list[ScopeChange]:
        """Every change of the reviewer's scope, oldest first."""
        ...


def checked_sub(reviewer_sub: str) -> str:
    if not _SUB.match(reviewer_sub):
        raise NotFound("No reviewer with this id.")
    return reviewer_sub


def assign_departments(
    store: ScopeStore, caller: Caller, reviewer_sub: str, assignment: ScopeAssignment, expected_version: int, at: str
) -> ReviewerScope:
    """An admin replaces a reviewer's departments at the version they read; the change is audited."""
    caller.require(Role.ADMIN)
    current = store.scope(checked_sub(reviewer_sub))
    if current.version != expected_version:
        raise _stale(current, expected_version)
    updated = ReviewerScope(
        reviewer_sub=reviewer_sub,
        departments=assignment.departments,
        version=current.version + 1,
        updated_at=at,
        updated_by=caller.sub,
    )
    change = ScopeChange(
        reviewer_sub=reviewer_sub,
        version=updated.version,
        actor=caller.sub,
        from_departments=current.departments,
        to_departments=updated.departments,
        at=at,
    )
    try:
        store.replace(updated, change)
    except VersionMismatch as error:
        raise _stale(store.scope(reviewer_sub), expected_version) from error
    return updated


def reviewer_scope(store: ScopeStore, caller: Caller, reviewer_sub: str) -> ScopeView:
    caller.require(Role.ADMIN)
    scope = store.scope(checked_sub(reviewer_sub))
    return ScopeView(scope=scope, history=store.history(reviewer_sub))


def _stale(current: ReviewerScope, expected_version: int) -> VersionMismatch:
    return VersionMismatch(
        f"The reviewer's departments changed since version {expected_version}: they are now at version "
        f"{current.version}. Read them again before changing them.",
        details=[{"expected_version": expected_version, "current_version": current.version}],
    )
