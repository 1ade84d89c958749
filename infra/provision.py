"""Creates the template's tables and buckets on the local stack (idempotent)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.components import REGION
from infra.template import LocalNames, Template


def table_definition(name: str, props: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    indexes = [
        {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
        for i in props.get("GlobalSecondaryIndexes", [])
    ]
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    return definition


def add_missing_indexes(client, name: str, props: dict[str, Any]) -> list[str]:
    """A table kept from an earlier run gets the indexes the template added since."""
    present = {i["IndexName"] for i in client.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])}
    added = []
    for index in props.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        client.update_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index["IndexName"],
                        "KeySchema": index["KeySchema"],
                        "Projection": index["Projection"],
                    }
                }
            ],
        )
        added.append(index["IndexName"])
    return added


def create_tables(template: Template, names: LocalNames) -> list[str]:
    client = boto3.client("dynamodb", region_name=REGION)
    existing = set(client.list_tables()["TableNames"])
    created = []
    for logical_id, props in template.tables.items():
        name = names.table(logical_id)
        if name in existing:
            add_missing_indexes(client, name, props)
            continue
        client.create_table(**table_definition(name, props))
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        created.append(name)
    return created


def create_buckets(template: Template, names: LocalNames) -> list[str]:
    client = boto3.client("s3", region_name=REGION)
    created = []
    for logical_id in template.buckets:
        name = names.bucket(logical_id)
        try:
            client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
            created.append(name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise
    return created


def provision(template: Template, names: LocalNames) -> None:
    create_tables(template, names)
    create_buckets(template, names)
