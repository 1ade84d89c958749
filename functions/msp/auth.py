"""Who is calling: the claims API Gateway's JWT authorizer verified."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from msp.errors import NotAuthenticated, RoleNotAllowed


class Role(StrEnum):
    PSYCHOLOGIST = "psychologists"
    REVIEWER = "reviewers"
    ADMIN = "admins"


ROLE_NAMES = frozenset(role.value for role in Role)
ALL_DEPARTMENTS = "*"
# Put in access tokens by the token trigger from the admins' assignment (msp.reviewers); never a user attribute.
DEPARTMENTS_CLAIM = "msp:departments"


def _claim_list(value: Any, separators: str) -> list[str]:
    """API Gateway flattens array claims to "[a b]"; tokens may also carry real lists."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip().removeprefix("[").removesuffix("]")
    for separator in separators:
        text = text.replace(separator, " ")
    return [part for part in text.split() if part]


class Caller(BaseModel):
    sub: str
    roles: frozenset[Role]
    departments: frozenset[str] = frozenset()

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any] | None) -> Caller:
        if not claims or not claims.get("sub"):
            raise NotAuthenticated("A valid bearer token is required.")
        # The authorizer also accepts Cognito ID tokens (their audience is the client id); only access tokens
        # carry what the token trigger decided.
        if claims.get("token_use", "access") != "access":
            raise NotAuthenticated("Send the access token, not the ID token.")
        roles = frozenset(Role(g) for g in _claim_list(claims.get("cognito:groups"), ", ") if g in ROLE_NAMES)
        departments = frozenset(_claim_list(claims.get(DEPARTMENTS_CLAIM), ", "))
        return cls(sub=str(claims["sub"]), roles=roles, departments=departments)

    def has(self, role: Role) -> bool:
        return role in self.roles

    def require(self, *roles: Role) -> None:
        if not any(role in self.roles for role in roles):
            allowed = ", ".join(r.value for r in roles)
            raise RoleNotAllowed(f"This route is reserved to: {allowed}.")

    def covers_department(self, department: str | None) -> bool:
        if self.has(Role.ADMIN):
            return True
        if not self.has(Role.REVIEWER) or department is None:
            return False
        return ALL_DEPARTMENTS in self.departments or department in self.departments
