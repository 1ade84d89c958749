"""Cognito pre-token-generation trigger (V2 event): the token's groups, and a reviewer's assigned departments in
the access token. Staff without a second factor get a token without their staff groups."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.cognito_user_pool_event import PreTokenGenerationV2TriggerEvent

from msp.reviewers.tokens import grant_for
from msp.storage.reviewer_scopes import reviewer_scope_store, second_factor_enabled

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=PreTokenGenerationV2TriggerEvent)
def handler(event: PreTokenGenerationV2TriggerEvent, context):
    sub = event.request.user_attributes["sub"]
    requested = event.request.group_configuration.groups_to_override
    grant = grant_for(
        requested,
        has_second_factor=lambda: second_factor_enabled(event.user_pool_id, event.user_name),
        assigned_departments=lambda: reviewer_scope_store().scope(sub).departments,
    )
    if grant.groups != sorted(set(requested)):
        logger.info("staff groups left out: no second factor", extra={"sub": sub, "trigger": event.trigger_source})
    # Written as Cognito reads it: V2 claims may be lists, which Powertools' setters type as strings only.
    event.raw_event["response"]["claimsAndScopeOverrideDetails"] = {
        "groupOverrideDetails": {"groupsToOverride": grant.groups},
        "accessTokenGeneration": {"claimsToAddOrOverride": grant.access_token_claims()},
    }
    return event.raw_event
