"""The candidature state machine, as data: who may take which action from which state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from msp.auth import Role
from msp.candidatures.models import Status
from msp.errors import InvalidFields, InvalidTransition, RoleNotAllowed


class Action(StrEnum):
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    START_REVIEW = "start_review"
    REQUEST_INFO = "request_info"
    ACCEPT = "accept"
    REJECT = "reject"
    DECONVENTION = "deconvention"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Status]
    target: Status
    roles: frozenset[Role]
    reason_required: bool = False


OWNER = frozenset({Role.PSYCHOLOGIST})
REVIEW = frozenset({Role.REVIEWER, Role.ADMIN})

TRANSITIONS: dict[Action, Transition] = {
    Action.SUBMIT: Transition(frozenset({Status.DRAFT, Status.INFO_REQUESTED}), Status.SUBMITTED, OWNER),
    Action.WITHDRAW: Transition(
        frozenset({Status.DRAFT, Status.SUBMITTED, Status.INFO_REQUESTED}), Status.WITHDRAWN, OWNER
    ),
    Action.START_REVIEW: Transition(frozenset({Status.SUBMITTED}), Status.IN_REVIEW, REVIEW),
    Action.REQUEST_INFO: Transition(frozenset({Status.IN_REVIEW}), Status.INFO_REQUESTED, REVIEW, True),
    Action.ACCEPT: Transition(frozenset({Status.IN_REVIEW}), Status.ACCEPTED, REVIEW),
    Action.REJECT: Transition(frozenset({Status.IN_REVIEW}), Status.REJECTED, REVIEW, True),
    Action.DECONVENTION: Transition(frozenset({Status.ACCEPTED}), Status.DECONVENTIONED, REVIEW, True),
}


def allowed_actions(status: Status, roles: frozenset[Role]) -> list[str]:
    return [action.value for action, rule in TRANSITIONS.items() if status in rule.sources and rule.roles & roles]


def plan_transition(status: Status, action: Action, roles: frozenset[Role], reason: str | None) -> Status:
    """The state an action leads to, or the domain error explaining why it cannot be taken."""
    rule = TRANSITIONS[action]
    if not rule.roles & roles:
        raise RoleNotAllowed(f"Your role may not '{action.value}' a candidature.")
    if status not in rule.sources:
        allowed = allowed_actions(status, roles)
        raise InvalidTransition(
            f"'{action.value}' is not possible from status '{status.value}'.",
            details=[{"status": status.value, "allowed_actions": allowed}],
        )
    if rule.reason_required and not (reason and reason.strip()):
        raise InvalidFields(
            f"'{action.value}' needs a reason.",
            details=[{"field": "reason", "message": "give the reason the psychologist will read"}],
        )
    return rule.target
