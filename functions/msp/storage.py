"""All persistence: DynamoDB items and S3 objects. Nothing above this module touches boto3.

Storage errors become domain errors here; callers see NotFound, Conflict, PreconditionFailed
or ServiceUnavailable, never a botocore exception.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from msp.config import settings
from msp.errors import Conflict, NotFound, PreconditionFailed, ServiceUnavailable
from msp.models import AuditEvent, Candidature, Document, DocumentStatus

_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=2,
    read_timeout=5,
    signature_version="s3v4",
)
_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalServerError",
    }
)
_TRANSACTION_ATTEMPTS = 6

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@cache
def dynamodb_client():
    return boto3.client("dynamodb", region_name=settings().region, config=_BOTO_CONFIG)


@cache
def s3_client():
    return boto3.client("s3", region_name=settings().region, config=_BOTO_CONFIG)


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """Python values to DynamoDB attribute values (floats become exact decimals)."""
    plain = json.loads(json.dumps(data), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in plain.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("The service is busy; retry in a moment.", headers={"Retry-After": "2"})


@contextmanager
def aws_errors() -> Iterator[None]:
    """Throttling and outages become a retryable 503; anything else propagates."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _THROTTLING_CODES:
            raise _unavailable() from error
        raise
    except BotoCoreError as error:
        raise _unavailable() from error


def cancellation_reasons(error: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]


def transact_write(items: list[dict[str, Any]]) -> None:
    """One TransactWriteItems; conflicts with a concurrent transaction are retried with jitter.

    botocore does not retry TransactionCanceledException, whose reason TransactionConflict
    means another transaction touched one of our items: the write is safe to try again.
    """
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            with aws_errors():
                dynamodb_client().transact_write_items(TransactItems=items)
            return
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            if "TransactionConflict" not in cancellation_reasons(error):
                raise
            if attempt == _TRANSACTION_ATTEMPTS - 1:
                raise _unavailable() from error
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto


# ---------------------------------------------------------------- candidatures


def _candidature_key(candidature_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": "CANDIDATURE"}}


def _identifier_key(identifier_type: str, value: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDENTIFIER#{identifier_type}#{value}"}, "sk": {"S": "LOCK"}}


def _held_identifier(candidature: Candidature | None) -> tuple[str, str] | None:
    if candidature is None or not candidature.holds_identifier:
        return None
    identifier = candidature.fields.identifier
    return identifier.type, identifier.value


def _candidature_item(candidature: Candidature) -> dict[str, Any]:
    data = candidature.model_dump(mode="json", exclude={"documents"})
    data["documents"] = {d.document_id: d.model_dump(mode="json") for d in candidature.documents}
    data["department"] = candidature.department
    return _candidature_key(candidature.id) | to_item(data)


def _candidature_from_item(item: dict[str, Any]) -> Candidature:
    data = from_item(item)
    documents = sorted(data.pop("documents", {}).values(), key=lambda d: (d["requested_at"], d["document_id"]))
    return Candidature.model_validate({**data, "documents": documents})


def _audit_put(event: AuditEvent) -> dict[str, Any]:
    item = {"pk": {"S": f"CANDIDATURE#{event.candidature_id}"}, "sk": {"S": f"AUDIT#{event.version:08d}"}} | to_item(
        event.model_dump(mode="json")
    )
    return {"Put": {"TableName": settings().app_table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


class CandidatureStore:
    """Candidatures, their identifier locks and their audit trail, in the application table."""

    def __init__(self, table: str):
        self.table = table

    def get(self, candidature_id: str) -> Candidature:
        with aws_errors():
            response = dynamodb_client().get_item(
                TableName=self.table, Key=_candidature_key(candidature_id), ConsistentRead=True
            )
        if "Item" not in response:
            raise NotFound("No candidature with this id.")
        return _candidature_from_item(response["Item"])

    def save(self, candidature: Candidature, *, previous: Candidature | None, audit: AuditEvent | None) -> None:
        """Write a new version in one transaction: the item under a version condition, the
        identifier lock moves when the held identifier changes, and the audit event is appended."""
        if previous is None:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(previous.version)}},
            }
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": _candidature_item(candidature), **condition}}
        ]
        before, after = _held_identifier(previous), _held_identifier(candidature)
        if before != after:
            if before:
                items.append(
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": _identifier_key(*before),
                            "ConditionExpression": "candidature_id = :id",
                            "ExpressionAttributeValues": {":id": {"S": candidature.id}},
                        }
                    }
                )
            if after:
                items.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _identifier_key(*after) | {"candidature_id": {"S": candidature.id}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
        if audit is not None:
            items.append(_audit_put(audit))
        try:
            transact_write(items)
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                if previous is None:
                    raise Conflict("This candidature already exists.") from error
                raise PreconditionFailed(
                    "The candidature changed since you read it: read it again, then retry.",
                    code="version_mismatch",
                ) from error
            if after and "ConditionalCheckFailed" in reasons:
                raise self._identifier_taken(*after) from error
            raise

    def _identifier_taken(self, identifier_type: str, value: str) -> Conflict:
        with aws_errors():
            lock = (
                dynamodb_client()
                .get_item(TableName=self.table, Key=_identifier_key(identifier_type, value), ConsistentRead=True)
                .get("Item")
            )
        status = "unknown"
        if lock:
            with suppress(NotFound):
                status = self.get(lock["candidature_id"]["S"]).status.value
        return Conflict(
            f"An active candidature already uses this {identifier_type.upper()} number (status: {status}).",
            code="identifier_in_use",
            details=[{"field": "identifier", "existing_status": status}],
        )

    def record_document_verdict(self, candidature_id: str, document: Document) -> bool:
        """Store the check's verdict once; False when it was already recorded (S3 redelivers)."""
        values = to_item(
            {":verdict": document.model_dump(mode="json"), ":pending": DocumentStatus.PENDING.value, ":one": 1}
        )
        try:
            with aws_errors():
                dynamodb_client().update_item(
                    TableName=self.table,
                    Key=_candidature_key(candidature_id),
                    UpdateExpression="SET documents.#doc = :verdict, version = version + :one",
                    ConditionExpression="documents.#doc.#status = :pending",
                    ExpressionAttributeNames={"#doc": document.document_id, "#status": "status"},
                    ExpressionAttributeValues=values,
                )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


# ---------------------------------------------------------------- documents bucket


class DocumentBucket:
    def __init__(self, bucket: str):
        self.bucket = bucket

    def presign_upload(self, key: str, content_type: str, max_size: int, expires_in: int) -> tuple[str, dict]:
        with aws_errors():
            post = s3_client().generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_size]],
                ExpiresIn=expires_in,
            )
        return post["url"], post["fields"]

    def read_head(self, key: str, length: int) -> tuple[bytes, int]:
        """The first bytes of an object and its total size."""
        with aws_errors():
            response = s3_client().get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}")
        head = response["Body"].read()
        content_range = response.get("ContentRange", "")
        total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else response["ContentLength"]
        return head, total

    def move(self, source_key: str, target_key: str) -> None:
        with aws_errors():
            s3_client().copy_object(
                Bucket=self.bucket, Key=target_key, CopySource={"Bucket": self.bucket, "Key": source_key}
            )
            s3_client().delete_object(Bucket=self.bucket, Key=source_key)

    def delete(self, key: str) -> None:
        with aws_errors():
            s3_client().delete_object(Bucket=self.bucket, Key=key)


def is_missing_object(error: Exception) -> bool:
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in {
        "NoSuchKey",
        "404",
        "NotFound",
    }


@cache
def candidature_store() -> CandidatureStore:
    return CandidatureStore(settings().app_table)


@cache
def document_bucket() -> DocumentBucket:
    return DocumentBucket(settings().documents_bucket)
