"""What every storage module shares: the AWS clients, item conversion, the translation of throttling and
outages into StorageBusy, the transaction retry, one pagination loop and one unprocessed-keys retry.

Nothing above `msp.storage` touches boto3: storage turns every AWS failure into a domain error or a fact.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from msp.config import settings
from msp.errors import StorageBusy

# Standard retries, 3 attempts in all (botocore's `max_attempts` counts retries; `total_max_attempts` does not
# leave the doubt): the backoff waits up to 1 s, then up to 2 s, so a call that stays throttled answers 503 within
# about 3 s, well inside the API functions' 10 s timeout. A function that times out gets a bare 500 from
# API Gateway, without our error shape or Retry-After.
SERVICE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)
BOTO_CONFIG = SERVICE_CONFIG.merge(Config(signature_version="s3v4"))
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
TRANSACTION_ATTEMPTS = 8
BATCH_READ_ATTEMPTS = 5
# Cancellation reasons of a transaction that may pass on a new attempt.
_PASSING_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@cache
def dynamodb_client():
    return boto3.client("dynamodb", region_name=settings().region, config=BOTO_CONFIG)


@cache
def s3_client():
    return boto3.client("s3", region_name=settings().region, config=BOTO_CONFIG)


# Reading or loading a whole year: one connection per parallel reader, and pages of up to 1 MB take longer.
_BULK_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=2,
    read_timeout=30,
    max_pool_connections=32,
)


@cache
def bulk_dynamodb_client():
    return boto3.client("dynamodb", region_name=settings().region, config=_BULK_CONFIG)


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """Python values to DynamoDB attribute values (floats become exact decimals)."""
    plain = json.loads(json.dumps(data), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in plain.items() if value is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def without_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in {"pk", "sk"}}


def busy() -> StorageBusy:
    return StorageBusy("The service is busy; retry in a moment.")


def is_passing(error: ClientError) -> bool:
    """Throttling, or a server-side error (5xx) that botocore's retries did not outlast."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error.response.get("Error", {}).get("Code") in THROTTLING_CODES or status >= 500


@contextmanager
def aws_errors() -> Iterator[None]:
    """Throttling and outages (5xx, unreachable endpoint, timeouts) become StorageBusy; anything else
    propagates."""
    try:
        yield
    except ClientError as error:
        if is_passing(error):
            raise busy() from error
        raise
    except BotoCoreError as error:
        raise busy() from error


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def condition_failed(error: ClientError) -> bool:
    """A single write refused by its condition (not a transaction)."""
    return error_code(error) == "ConditionalCheckFailedException"


def cancellation_reasons(error: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]


def cancellations(error: ClientError) -> list[dict[str, Any]]:
    """The per-item reasons of a cancelled transaction (with the item when ALL_OLD was asked); [] otherwise."""
    if error_code(error) != "TransactionCanceledException":
        return []
    return list(error.response.get("CancellationReasons", []))


def check_failed(reason: dict[str, Any]) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def _worth_retrying(error: ClientError) -> bool:
    """A transaction cancelled for a passing reason: another transaction touched one of our items
    (TransactionConflict), or DynamoDB throttled one of them, which it reports as a cancellation reason
    rather than as a throttling error. A failed condition is an answer, never retried."""
    reasons = cancellation_reasons(error)
    if "ConditionalCheckFailed" in reasons and "TransactionConflict" not in reasons:
        return False
    return any(reason in _PASSING_CANCELLATIONS for reason in reasons)


def jitter(attempt: int, base: float = 0.02) -> None:
    time.sleep(random.uniform(0, base * 2**attempt))  # noqa: S311 - jitter, not crypto


def transact_write(items: list[dict[str, Any]]) -> None:
    """One TransactWriteItems; cancellations for a passing reason are retried with jitter, then StorageBusy.

    botocore does not retry TransactionCanceledException; the write is safe to try again when its
    reasons are only conflicts or throttling (see _worth_retrying).
    """
    for attempt in range(TRANSACTION_ATTEMPTS):
        try:
            with aws_errors():
                dynamodb_client().transact_write_items(TransactItems=items)
            return
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            if not _worth_retrying(error):
                raise
            if attempt == TRANSACTION_ATTEMPTS - 1:
                raise busy() from error
            jitter(attempt)


def pages(call: Callable[..., dict[str, Any]], arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan, following LastEvaluatedKey (`arguments` is not changed)."""
    arguments = dict(arguments)
    while True:
        with aws_errors():
            page = call(**arguments)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def query_items(arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item a Query answers, all pages of it, raw."""
    for page in pages(dynamodb_client().query, arguments):
        yield from page.get("Items", [])


def batch_get(request_items: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One BatchGetItem, with its unprocessed keys asked again (jittered) until none is left: raw items by table.

    StorageBusy when keys are still unprocessed after BATCH_READ_ATTEMPTS requests.
    """
    found: dict[str, list[dict[str, Any]]] = {}
    pending = request_items
    for attempt in range(BATCH_READ_ATTEMPTS):
        with aws_errors():
            response = dynamodb_client().batch_get_item(RequestItems=pending)
        for table, items in response.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        pending = response.get("UnprocessedKeys") or {}
        if not pending:
            return found
        jitter(attempt)
    raise busy()


def get_item(table: str, key: dict[str, Any], *, consistent: bool = True) -> dict[str, Any] | None:
    """One item, raw, or None."""
    with aws_errors():
        return dynamodb_client().get_item(TableName=table, Key=key, ConsistentRead=consistent).get("Item")
