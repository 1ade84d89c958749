"""What an access token says about its user: their groups and, for a reviewer, the departments admins assigned.

Decided here for the Cognito pre-token-generation trigger (V2 event), and for the local dev issuer, which runs
the same trigger. Staff roles (reviewers, admins) see identity documents: a user without a second factor gets
a token without them, so a password alone never opens a staff route, while the user can still set up their
authenticator app with that token. A user attribute (such as the retired `custom:departments`) is never read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from msp.auth import DEPARTMENTS_CLAIM, Role

STAFF_ROLES = frozenset({Role.REVIEWER.value, Role.ADMIN.value})


@dataclass(frozen=True)
class TokenGrant:
    groups: list[str]
    # None: the token carries no departments claim (only reviewers have one).
    departments: list[str] | None

    def access_token_claims(self) -> dict[str, list[str]]:
        return {} if self.departments is None else {DEPARTMENTS_CLAIM: self.departments}


def grant_for(
    groups: Sequence[str], has_second_factor: Callable[[], bool], assigned_departments: Callable[[], list[str]]
) -> TokenGrant:
    """The token's groups and departments. The lookups run only for staff: a psychologist's sign-in reads nothing."""
    kept = sorted(set(groups))
    if STAFF_ROLES & set(kept) and not has_second_factor():
        kept = [group for group in kept if group not in STAFF_ROLES]
    departments = assigned_departments() if Role.REVIEWER.value in kept else None
    return TokenGrant(groups=kept, departments=departments)
