from __future__ import annotations

import pytest

from msp.auth import Role
from msp.candidatures.models import Status
from msp.candidatures.workflow import TRANSITIONS, Action, allowed_actions, plan_transition
from msp.errors import InvalidFields, InvalidTransition, RoleNotAllowed

PSY = frozenset({Role.PSYCHOLOGIST})
REVIEWER = frozenset({Role.REVIEWER})

EXPECTED = {
    (Status.DRAFT, Action.SUBMIT): Status.SUBMITTED,
    (Status.INFO_REQUESTED, Action.SUBMIT): Status.SUBMITTED,
    (Status.DRAFT, Action.WITHDRAW): Status.WITHDRAWN,
    (Status.SUBMITTED, Action.WITHDRAW): Status.WITHDRAWN,
    (Status.INFO_REQUESTED, Action.WITHDRAW): Status.WITHDRAWN,
    (Status.SUBMITTED, Action.START_REVIEW): Status.IN_REVIEW,
    (Status.IN_REVIEW, Action.REQUEST_INFO): Status.INFO_REQUESTED,
    (Status.IN_REVIEW, Action.ACCEPT): Status.ACCEPTED,
    (Status.IN_REVIEW, Action.REJECT): Status.REJECTED,
    (Status.ACCEPTED, Action.DECONVENTION): Status.DECONVENTIONED,
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_state_and_action_follows_design(status, action):
    roles = TRANSITIONS[action].roles
    expected = EXPECTED.get((status, action))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            plan_transition(status, action, roles, reason="motif")
        assert caught.value.details[0]["allowed_actions"] == allowed_actions(status, roles)
    else:
        assert plan_transition(status, action, roles, reason="motif") == expected


@pytest.mark.parametrize("action", [Action.REJECT, Action.REQUEST_INFO, Action.DECONVENTION])
def test_decisions_against_the_psychologist_need_a_reason(action):
    source = next(iter(TRANSITIONS[action].sources))
    for reason in (None, "", "   "):
        with pytest.raises(InvalidFields):
            plan_transition(source, action, REVIEWER, reason=reason)


def test_a_psychologist_cannot_decide_and_a_reviewer_cannot_submit():
    with pytest.raises(RoleNotAllowed):
        plan_transition(Status.IN_REVIEW, Action.ACCEPT, PSY, reason=None)
    with pytest.raises(RoleNotAllowed):
        plan_transition(Status.DRAFT, Action.SUBMIT, REVIEWER, reason=None)


def test_terminal_states_allow_nothing():
    for status in (Status.REJECTED, Status.WITHDRAWN, Status.DECONVENTIONED):
        assert allowed_actions(status, PSY | REVIEWER | {Role.ADMIN}) == []
