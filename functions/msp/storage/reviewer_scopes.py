"""Reviewer scopes in the application table, beside the candidatures and under keys of their own:

    scope   pk=REVIEWER#<sub>  sk=SCOPE                 departments, version, updated_at, updated_by
    change  pk=REVIEWER#<sub>  sk=AUDIT#<version, 8 digits>  actor, from_departments, to_departments, at

A change is written with its scope in one transaction, conditioned on the version it replaces, so the audit
trail has exactly one record per version. The token trigger may read REVIEWER# items only (IAM LeadingKeys).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from msp.config import settings
from msp.errors import VersionMismatch
from msp.reviewers.scope import ReviewerScope, ScopeChange
from msp.storage.aws import (
    aws_errors,
    cancellation_reasons,
    from_item,
    get_item,
    query_items,
    to_item,
    transact_write,
    without_keys,
)

PARTITION_PREFIX = "REVIEWER#"


def _key(reviewer_sub: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": f"{PARTITION_PREFIX}{reviewer_sub}"}, "sk": {"S": sort_key}}


class ReviewerScopeStore:
    def __init__(self, table: str):
        self.table = table

    def scope(self, reviewer_sub: str) -> ReviewerScope:
        item = get_item(self.table, _key(reviewer_sub, "SCOPE"))
        if item is None:
            return ReviewerScope(reviewer_sub=reviewer_sub, departments=[], version=0)
        return ReviewerScope(reviewer_sub=reviewer_sub, **without_keys(from_item(item)))

    def replace(self, scope: ReviewerScope, change: ScopeChange) -> None:
        previous = change.version - 1
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous == 0
            else {
                "ConditionExpression": "version = :previous",
                "ExpressionAttributeValues": {":previous": {"N": str(previous)}},
            }
        )
        scope_item = _key(scope.reviewer_sub, "SCOPE") | to_item(scope.model_dump(exclude={"reviewer_sub"}))
        change_item = _key(change.reviewer_sub, f"AUDIT#{change.version:08d}") | to_item(
            change.model_dump(exclude={"reviewer_sub"})
        )
        try:
            transact_write(
                [
                    {"Put": {"TableName": self.table, "Item": scope_item, **condition}},
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": change_item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if "ConditionalCheckFailed" in cancellation_reasons(error):
                raise VersionMismatch("The reviewer's scope changed meanwhile.") from error
            raise

    def history(self, reviewer_sub: str) -> list[ScopeChange]:
        arguments = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :audit)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"{PARTITION_PREFIX}{reviewer_sub}"},
                ":audit": {"S": "AUDIT#"},
            },
            "ConsistentRead": True,
        }
        return [
            ScopeChange(reviewer_sub=reviewer_sub, **without_keys(from_item(item))) for item in query_items(arguments)
        ]


@cache
def reviewer_scope_store() -> ReviewerScopeStore:
    return ReviewerScopeStore(settings().app_table)


# Cognito gives a trigger 5 seconds in all: one quick attempt and one retry.
_COGNITO_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=2)


@cache
def _cognito_client():
    return boto3.client("cognito-idp", region_name=settings().region, config=_COGNITO_CONFIG)


def second_factor_enabled(user_pool_id: str, username: str) -> bool:
    """Whether the user has an MFA method turned on; with MFA optional on the pool, Cognito then asks for it at
    every sign-in (no device is remembered), so their tokens follow a second factor."""
    with aws_errors():
        user = _cognito_client().admin_get_user(UserPoolId=user_pool_id, Username=username)
    return bool(user.get("UserMFASettingList"))
