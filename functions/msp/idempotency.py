"""Idempotency-Key handling for the candidature create route, on Powertools' idempotency utility.

A session declaration does not use it: its session item, keyed by the id derived from the key, is its record
(see storage.SessionStore.record_declaration), written in the same transaction as the count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from msp.auth import Caller
from msp.config import settings
from msp.errors import IdempotencyKeyReused, RequestInProgress, StorageBusy
from msp.idempotency_keys import checked_key
from msp.storage.aws import dynamodb_client

_CONFIG = IdempotencyConfig(
    event_key_jmespath="[operation, owner, key]",
    payload_validation_jmespath="payload",
    expires_after_seconds=24 * 3600,
    raise_on_no_idempotency_key=True,
)


_CONFIGURING = threading.Lock()


@cache
def _persistence() -> DynamoDBPersistenceLayer:
    with _CONFIGURING:
        # The storage module's DynamoDB client: retried like every storage call, and no second boto3 session
        # (Powertools would create one, loading the endpoint and service models again on a cold start).
        layer = DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=dynamodb_client())
        # Powertools configures the layer on its first use and flags it configured before it has set the key
        # expression: configured here, once, it cannot compute another key for a concurrent first request.
        layer.configure(_CONFIG, function_name=f"{__name__}.once_per_key")
        return layer


def once_per_key(
    operation: str, caller: Caller, key: str | None, payload: Any, compute: Callable[[], dict], lambda_context: Any
) -> dict:
    """Run `compute` once per (operation, caller, key); a replay returns the stored result.

    The same key with a different payload is refused with 422.
    """
    _CONFIG.register_lambda_context(lambda_context)
    request = {"operation": operation, "owner": caller.sub, "key": checked_key(key), "payload": payload}

    @idempotent_function(data_keyword_argument="request", persistence_store=_persistence(), config=_CONFIG)
    def run(request: dict) -> dict:
        return compute()

    try:
        return run(request=request)
    except IdempotencyValidationError as error:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different body: use a new key."
        ) from error
    except IdempotencyAlreadyInProgressError as error:
        raise RequestInProgress(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        ) from error
    except IdempotencyPersistenceLayerError as error:
        raise StorageBusy("The service is busy; retry in a moment.") from error
