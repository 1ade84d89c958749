"""Creates the template's tables and buckets on the local stack (idempotent), and its secrets' dev values."""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
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
        versioning = template.buckets[logical_id].get("VersioningConfiguration")
        if versioning:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
    return created


def create_queues(template: Template, names: LocalNames) -> list[str]:
    """The template's queues with their retention (creating an existing queue with the same attributes is a no-op)."""
    client = boto3.client("sqs", region_name=REGION)
    for logical_id, props in template.queues.items():
        attributes = {"MessageRetentionPeriod": str(props.get("MessageRetentionPeriod", 345600))}
        client.create_queue(QueueName=names.by_logical_id[logical_id], Attributes=attributes)
    return [names.by_logical_id[logical_id] for logical_id in template.queues]


def provision(template: Template, names: LocalNames) -> None:
    create_tables(template, names)
    create_buckets(template, names)
    create_queues(template, names)


def generated_secret(props: dict[str, Any]) -> str:
    """A value shaped like the one Secrets Manager generates from the template's GenerateSecretString."""
    spec = props.get("GenerateSecretString")
    if not spec:
        raise ValueError("only secrets with GenerateSecretString have a local value")
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if "SecretStringTemplate" not in spec:
        return value
    document = json.loads(spec["SecretStringTemplate"])
    document[spec["GenerateStringKey"]] = value
    return json.dumps(document)


def dev_secrets(template: Template, names: LocalNames, directory: Path) -> dict[str, str]:
    """The local stand-in for Secrets Manager: `X_DEV_SECRET` holds the value for each `X_SECRET_ARN`.

    Values are generated once and kept in `directory`, so data keyed with them stays readable across
    restarts of `make run`; functions read the variable instead of calling Secrets Manager.
    """
    environment = {}
    for variable, logical_id in sorted(names.secret_variables().items()):
        if not variable.endswith("_SECRET_ARN"):
            raise ValueError(f"{variable} names a secret: call it <NAME>_SECRET_ARN")
        path = directory / f"{logical_id}.json"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(generated_secret(template.secrets[logical_id]), encoding="utf-8")
        environment[variable.removesuffix("_SECRET_ARN") + "_DEV_SECRET"] = path.read_text(encoding="utf-8")
    return environment
