"""All persistence: DynamoDB items, S3 objects and the secret they are keyed with. Nothing above this
module touches boto3.

Storage errors become domain errors here; callers see NotFound, Conflict, Forbidden, PreconditionFailed
or ServiceUnavailable, never a botocore exception.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from msp import cursors
from msp.clock import now_iso
from msp.config import settings
from msp.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, ServiceUnavailable, Unprocessable

# Only the stores that need them import the candidature, session, tally and directory modules (a handler pays at
# cold start for what it imports); their types are named here for annotations only.
if TYPE_CHECKING:
    from msp.cellkeys import KeyRange
    from msp.directory import ListedPractice, PublicProfile
    from msp.models import AuditEvent, Candidature, DecisionEvent, Document, EmailMessage, QueueEntry, QueuePage, Status
    from msp.sessions import DeclaredSession, PatientKeyring, SessionRecord
    from msp.tally import Row

log = logging.getLogger(__name__)

# Standard retries, 3 attempts in all (botocore's `max_attempts` counts retries; `total_max_attempts` does not
# leave the doubt): the backoff waits up to 1 s, then up to 2 s, so a call that stays throttled answers 503 within
# about 3 s, well inside the API functions' 10 s timeout. A function that times out gets a bare 500 from
# API Gateway, without our error shape or Retry-After.
_SERVICE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)
_BOTO_CONFIG = _SERVICE_CONFIG.merge(Config(signature_version="s3v4"))
_THROTTLING_CODES = frozenset(
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
_TRANSACTION_ATTEMPTS = 6
# Cancellation reasons of a transaction that may pass on a new attempt.
_PASSING_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@cache
def dynamodb_client():
    return boto3.client("dynamodb", region_name=settings().region, config=_BOTO_CONFIG)


@cache
def s3_client():
    return boto3.client("s3", region_name=settings().region, config=_BOTO_CONFIG)


@cache
def events_client():
    return boto3.client("events", region_name=settings().region, config=_BOTO_CONFIG)


@cache
def ses_client():
    return boto3.client("sesv2", region_name=settings().region, config=_BOTO_CONFIG)


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


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("The service is busy; retry in a moment.", headers={"Retry-After": "2"})


def _passing(error: ClientError) -> bool:
    """Throttling, or a server-side error (5xx) that botocore's retries did not outlast."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error.response.get("Error", {}).get("Code") in _THROTTLING_CODES or status >= 500


@contextmanager
def aws_errors() -> Iterator[None]:
    """Throttling and outages (5xx, unreachable endpoint, timeouts) become a retryable 503; anything else
    propagates."""
    try:
        yield
    except ClientError as error:
        if _passing(error):
            raise _unavailable() from error
        raise
    except BotoCoreError as error:
        raise _unavailable() from error


def cancellation_reasons(error: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]


def cancellations(error: ClientError) -> list[dict[str, Any]]:
    """The per-item reasons of a cancelled transaction (with the item when ALL_OLD was asked); [] otherwise."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return []
    return list(error.response.get("CancellationReasons", []))


def _check_failed(reason: dict[str, Any]) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"


def _worth_retrying(error: ClientError) -> bool:
    """A transaction cancelled for a passing reason: another transaction touched one of our items
    (TransactionConflict), or DynamoDB throttled one of them, which it reports as a cancellation reason
    rather than as a throttling error. A failed condition is an answer, never retried."""
    reasons = cancellation_reasons(error)
    if "ConditionalCheckFailed" in reasons and "TransactionConflict" not in reasons:
        return False
    return any(reason in _PASSING_CANCELLATIONS for reason in reasons)


def transact_write(items: list[dict[str, Any]]) -> None:
    """One TransactWriteItems; cancellations for a passing reason are retried with jitter, then 503.

    botocore does not retry TransactionCanceledException; the write is safe to try again when its
    reasons are only conflicts or throttling (see _worth_retrying).
    """
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            with aws_errors():
                dynamodb_client().transact_write_items(TransactItems=items)
            return
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            if not _worth_retrying(error):
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


def _queue_keys(candidature: Candidature) -> dict[str, str]:
    """Keys of the sparse review-queue indexes; none for drafts and withdrawn candidatures."""
    from msp.models import QUEUE_STATUSES

    if candidature.status not in QUEUE_STATUSES or not candidature.department or not candidature.submitted_at:
        return {}
    return {
        "review_pk": f"{candidature.status.value}#{candidature.department}",
        "review_status": candidature.status.value,
        "review_sk": f"{candidature.submitted_at}#{candidature.id}",
    }


def _candidature_item(candidature: Candidature) -> dict[str, Any]:
    data = candidature.model_dump(mode="json", exclude={"documents"})
    data["documents"] = {d.document_id: d.model_dump(mode="json") for d in candidature.documents}
    data["department"] = candidature.department
    data |= _queue_keys(candidature)
    return _candidature_key(candidature.id) | to_item(data)


def _without_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in {"pk", "sk"}}


def _candidature_from_item(item: dict[str, Any]) -> Candidature:
    from msp.models import Candidature

    data = from_item(item)
    documents = sorted(data.pop("documents", {}).values(), key=lambda d: (d["requested_at"], d["document_id"]))
    return Candidature.model_validate({**data, "documents": documents})


def _audit_key(candidature_id: str, version: int) -> dict[str, Any]:
    return {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": f"AUDIT#{version:08d}"}}


def _audit_put(event: AuditEvent) -> dict[str, Any]:
    item = _audit_key(event.candidature_id, event.version) | to_item(event.model_dump(mode="json"))
    return {"Put": {"TableName": settings().app_table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


# ---------------------------------------------------------------- convention and directory listing
#
# Accepting a candidature writes, in the same transaction as the candidature and its audit event,
# the psychologist's convention item (sessions check it), one directory item per practice, the public
# profile and the density counters (ADD); leaving `accepted` marks the convention deconventioned, deletes
# the directory items and the profile, and counts the practices back out.


def _convention_write(candidature: Candidature, status: str) -> dict[str, Any]:
    """The convention item (its shape is convention_put's, below) as a conditional transaction Put."""
    put = convention_put(
        psychologist_sub=candidature.owner_sub,
        status=status,
        candidature_id=candidature.id,
        psychologist_id=candidature.id,
        department=candidature.department,
        updated_at=candidature.updated_at,
    )["Put"]
    if status == CONVENTION_ACCEPTED:
        # One live convention per psychologist: a second accepted candidature is refused.
        put["ConditionExpression"] = "attribute_not_exists(pk) OR #status <> :accepted OR candidature_id = :id"
        put["ExpressionAttributeNames"] = {"#status": "status"}
        put["ExpressionAttributeValues"] = {":accepted": {"S": CONVENTION_ACCEPTED}, ":id": {"S": candidature.id}}
    else:
        # Only the candidature that holds the convention ends it.
        put["ConditionExpression"] = "candidature_id = :id"
        put["ExpressionAttributeValues"] = {":id": {"S": candidature.id}}
    return {"Put": put}


def _convention_changes(previous: Candidature | None, candidature: Candidature) -> list[dict[str, Any]]:
    from msp.models import Status

    was = previous is not None and previous.status is Status.ACCEPTED
    now = candidature.status is Status.ACCEPTED
    if now and not was:
        return [_convention_write(candidature, "accepted"), *_listing_puts(candidature)]
    if was and not now:
        return [_convention_write(candidature, "deconventioned"), *_listing_deletes(previous)]
    return []


# A directory item's `listing`: its public fields as a JSON array in this order. No key names to store,
# send and parse; practice_id is the sort key's tail, partition and sort_key are the item's keys.
LISTING_FIELDS = (
    "psychologist_id",
    "name",
    "name_tokens",
    "address",
    "postcode",
    "city",
    "department",
    "lat",
    "lon",
    "phone",
    "email",
    "website",
    "languages",
    "publics",
    "teleconsultation",
)


def directory_item(practice: ListedPractice) -> dict[str, Any]:
    """A listed practice as a DirectoryTable item: pk = its coarse H3 cell, sk = "<fine cell hex>#<practice id>",
    and its public fields as one compact JSON array, `listing` (see LISTING_FIELDS).

    One attribute rather than seventeen: a search reads tens of items per request, and every attribute
    and byte costs the server to send and botocore to parse (make bench on DynamoDB Local: a search's
    p50 went from 19.8 ms with the fields as attributes to 10.8 ms as one JSON object; see README).
    """
    listing = [getattr(practice, name) for name in LISTING_FIELDS]
    return {
        "pk": practice.partition,
        "sk": practice.sort_key,
        "listing": json.dumps(listing, ensure_ascii=False, separators=(",", ":")),
    }


def _density_key(region: str) -> dict[str, Any]:
    return {"pk": {"S": f"{DENSITY_PREFIX}{region}"}, "sk": {"S": "RES7"}}


def _profile_key(psychologist_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{PROFILE_PREFIX}{psychologist_id}"}, "sk": {"S": "PROFILE"}}


def _listing_writes(candidature: Candidature, *, listed: bool) -> list[dict[str, Any]]:
    """Directory writes of an acceptance (listed) or of leaving `accepted`: one item per practice, the
    public profile, and the density counters moved by as many practices (one Update, ADD, per region)."""
    from msp import directory  # H3 and the search code load only where a listing changes

    table = settings().directory_table
    practices = directory.listing_items_for(candidature.id, candidature.fields)
    counters = []
    for region, changes in sorted(directory.density_changes(practices, 1 if listed else -1).items()):
        names = {f"#c{n}": cell for n, cell in enumerate(sorted(changes))}
        counters.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": _density_key(region),
                    "UpdateExpression": "ADD " + ", ".join(f"{name} :c{name[2:]}" for name in names),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {
                        f":c{name[2:]}": {"N": str(changes[cell])} for name, cell in names.items()
                    },
                }
            }
        )
    if listed:
        profile = directory.profile_for(candidature.id, candidature.fields)
        writes = [{"Put": {"TableName": table, "Item": to_item(directory_item(p))}} for p in practices]
        item = _profile_key(candidature.id) | to_item(profile.model_dump(mode="json"))
        writes.append({"Put": {"TableName": table, "Item": item}})
    else:
        writes = [
            {"Delete": {"TableName": table, "Key": {"pk": {"S": p.partition}, "sk": {"S": p.sort_key}}}}
            for p in practices
        ]
        writes.append({"Delete": {"TableName": table, "Key": _profile_key(candidature.id)}})
    return [*writes, *counters]


def _listing_puts(candidature: Candidature) -> list[dict[str, Any]]:
    return _listing_writes(candidature, listed=True)


def _listing_deletes(candidature: Candidature) -> list[dict[str, Any]]:
    return _listing_writes(candidature, listed=False)


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
        convention_at = len(items)
        items.extend(_convention_changes(previous, candidature))
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
            if len(reasons) > convention_at and reasons[convention_at] == "ConditionalCheckFailed":
                from msp.models import Status

                if candidature.status is Status.ACCEPTED:
                    raise Conflict(
                        "This psychologist already holds a convention from another candidature.",
                        code="already_conventioned",
                    ) from error
                raise Conflict(
                    "The psychologist's convention is not held by this candidature.", code="convention_mismatch"
                ) from error
            if after and "ConditionalCheckFailed" in reasons:
                raise self._identifier_taken(*after) from error
            raise

    def history(self, candidature_id: str) -> list[AuditEvent]:
        """The audit trail, oldest first (sort keys are zero-padded versions)."""
        from msp.models import AuditEvent

        events: list[AuditEvent] = []
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :audit)",
            "ExpressionAttributeValues": {":pk": {"S": f"CANDIDATURE#{candidature_id}"}, ":audit": {"S": "AUDIT#"}},
            "ConsistentRead": True,
            "ScanIndexForward": True,
        }
        while True:
            with aws_errors():
                page = dynamodb_client().query(**arguments)
            events.extend(AuditEvent.model_validate(_without_keys(from_item(i))) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return events
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def audit_event(self, candidature_id: str, version: int) -> AuditEvent | None:
        from msp.models import AuditEvent

        with aws_errors():
            item = (
                dynamodb_client()
                .get_item(TableName=self.table, Key=_audit_key(candidature_id, version), ConsistentRead=True)
                .get("Item")
            )
        return AuditEvent.model_validate(_without_keys(from_item(item))) if item else None

    def convention(self, owner_sub: str) -> dict[str, Any] | None:
        with aws_errors():
            item = (
                dynamodb_client()
                .get_item(TableName=self.table, Key=_convention_key(owner_sub), ConsistentRead=True)
                .get("Item")
            )
        return _without_keys(from_item(item)) if item else None

    def claim_notification(self, candidature_id: str, version: int) -> bool:
        """Mark the decision of `version` as being notified; False when it already was (redelivery)."""
        key = {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": f"NOTIFIED#{version:08d}"}}
        try:
            with aws_errors():
                dynamodb_client().put_item(
                    TableName=self.table, Item=key, ConditionExpression="attribute_not_exists(pk)"
                )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_notification(self, candidature_id: str, version: int) -> None:
        """Undo a claim after a failed send, so the retried event sends the message."""
        key = {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": f"NOTIFIED#{version:08d}"}}
        with aws_errors():
            dynamodb_client().delete_item(TableName=self.table, Key=key)

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
        from msp.models import DocumentStatus

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

    def presign_download(self, key: str, content_type: str, filename: str, expires_in: int) -> str:
        with aws_errors():
            return s3_client().generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": f'inline; filename="{filename}"',
                    "ResponseCacheControl": "no-store",
                },
                ExpiresIn=expires_in,
            )

    def read_head(self, key: str, length: int) -> tuple[bytes, int]:
        """The first bytes of an object and its total size; NotFound when there is no such object."""
        try:
            with aws_errors():
                response = s3_client().get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}")
                head = response["Body"].read()
        except ClientError as error:
            if is_missing_object(error):
                raise NotFound("No such object.") from error
            raise
        content_range = response.get("ContentRange", "")
        total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else response["ContentLength"]
        return head, total

    def copy(self, source_key: str, target_key: str) -> None:
        with aws_errors():
            s3_client().copy_object(
                Bucket=self.bucket, Key=target_key, CopySource={"Bucket": self.bucket, "Key": source_key}
            )

    def delete(self, key: str) -> None:
        with aws_errors():
            s3_client().delete_object(Bucket=self.bucket, Key=key)


def is_missing_object(error: Exception) -> bool:
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in {
        "NoSuchKey",
        "404",
        "NotFound",
    }


# ---------------------------------------------------------------- review queue

QUEUE_INDEX = "ReviewQueue"
NATIONAL_QUEUE_INDEX = "ReviewQueueNational"


def _queue_entry(item: dict[str, Any]) -> tuple[str, QueueEntry]:
    from msp.models import QueueEntry

    data = from_item(item)
    fields = data.get("fields") or {}
    practices = fields.get("practices") or []
    first = practices[0] if practices else {}
    entry = QueueEntry(
        id=data["id"],
        status=data["status"],
        version=int(data["version"]),
        department=data["department"],
        submitted_at=data["submitted_at"],
        updated_at=data["updated_at"],
        civility=fields.get("civility"),
        first_name=fields.get("first_name"),
        last_name=fields.get("last_name"),
        city=first.get("city"),
        postcode=first.get("postcode"),
        practices=len(practices),
    )
    return data["review_sk"], entry


class ReviewQueueStore:
    """The review queue: Queries on the sparse ReviewQueue indexes, never a Scan.

    Several departments are merged on review_sk ("<submitted_at>#<id>", unique), so a page is the
    next `limit` entries after the cursor's position across all of them, oldest submission first.
    """

    def __init__(self, table: str, cursor_secret: str):
        cursors.require_secret(cursor_secret.encode())
        self.table = table
        self.secret = cursor_secret.encode()

    def _partition(self, index: str, key_name: str, key: str, after: str | None, wanted: int) -> list:
        condition = f"{key_name} = :key"
        values: dict[str, Any] = {":key": {"S": key}}
        if after is not None:
            condition += " AND review_sk > :after"
            values[":after"] = {"S": after}
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": True,
            "Limit": wanted,
        }
        entries = []
        while len(entries) < wanted:
            with aws_errors():
                page = dynamodb_client().query(**arguments)
            entries.extend(_queue_entry(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return entries[:wanted]

    def page(self, status: Status, departments: list[str] | None, limit: int, cursor: str | None) -> QueuePage:
        """`departments` None means every department (one partition of the national index)."""
        from msp.models import QueuePage

        context = f"review-queue|{status.value}|{'*' if departments is None else ','.join(sorted(departments))}"
        after = None
        if cursor:
            position = cursors.open_sealed(cursor, context=context, secret=self.secret)
            after = position.get("after")
            if not isinstance(after, str):
                raise BadRequest("The cursor is invalid: ask for the first page again.", code="invalid_cursor")
        wanted = limit + 1  # one more than the page tells whether another page follows
        if departments is None:
            runs = [self._partition(NATIONAL_QUEUE_INDEX, "review_status", status.value, after, wanted)]
        else:
            runs = [
                self._partition(QUEUE_INDEX, "review_pk", f"{status.value}#{department}", after, wanted)
                for department in sorted(set(departments))
            ]
        merged = list(heapq.merge(*runs, key=lambda pair: pair[0]))[:wanted]
        next_cursor = None
        if len(merged) > limit:
            next_cursor = cursors.seal({"after": merged[limit - 1][0]}, context=context, secret=self.secret)
        return QueuePage(results=[entry for _, entry in merged[:limit]], next_cursor=next_cursor)


# ---------------------------------------------------------------- decision events


DECISION_SOURCE = "msp.review"
DECISION_DETAIL_TYPE = "CandidatureDecision"


class DecisionPublisher:
    """Puts decision events on the EventBridge bus (locally: the stack's in-process bus)."""

    def __init__(self, bus: str):
        self.bus = bus

    def publish(self, event: DecisionEvent) -> bool:
        """True when the bus took the event. A failure is logged, never raised: the decision
        is already written, and the audit trail keeps it."""
        entry = {
            "Source": DECISION_SOURCE,
            "DetailType": DECISION_DETAIL_TYPE,
            "Detail": event.model_dump_json(),
            "EventBusName": self.bus,
        }
        try:
            with aws_errors():
                response = events_client().put_events(Entries=[entry])
        except Exception:
            log.exception("decision event not published", extra={"candidature_id": event.candidature_id})
            return False
        if response.get("FailedEntryCount"):
            log.error("decision event refused by the bus: %s", response.get("Entries"))
            return False
        return True


# ---------------------------------------------------------------- e-mail


class SesMailer:
    def __init__(self, sender: str):
        self.sender = sender

    def send(self, message: EmailMessage) -> None:
        with aws_errors():
            ses_client().send_email(
                FromEmailAddress=self.sender,
                Destination={"ToAddresses": [message.to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                    }
                },
            )


class OutboxMailer:
    """Local stand-in for SES: one readable .eml file per message in a folder."""

    def __init__(self, sender: str, folder: Path):
        self.sender = sender
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        from email.message import EmailMessage as MimeMessage
        from email.policy import SMTPUTF8

        mime = MimeMessage(policy=SMTPUTF8)
        mime["From"] = self.sender
        mime["To"] = message.to
        mime["Subject"] = message.subject
        mime["X-Reference"] = message.reference
        mime.set_content(message.body, cte="8bit")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{message.reference}.eml"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(mime.as_bytes())
        temporary.replace(path)


# ---------------------------------------------------------------- directory: public search and profiles
#
# DirectoryTable holds public data only (the public routes read nothing else):
#   practice  pk=<coarse H3 cell>      sk=<fine cell hex>#<practice id>  what a search shows or filters on
#   profile   pk=PSYCHOLOGIST#<id>     sk=PROFILE                         the public profile
#   counters  pk=DENSITY#<res-3 cell>  sk=RES7                            one number per res-7 cell (the hint)
# All three change together, in the review transaction that accepts or deconventions.

PROFILE_PREFIX = "PSYCHOLOGIST#"
DENSITY_PREFIX = "DENSITY#"
DENSITY_MAX_AGE = 300  # seconds a warm function keeps the counters before reading them again
# A search needs the sort key (for the partition's order) and the listing; nothing else is sent back.
LISTING_PROJECTION = "sk, #listing"
LISTING_NAMES = {"#listing": "listing"}
# A search step sends a handful of Queries (4 at most by default, more where it crosses partitions).
_QUERY_WORKERS = 8


@cache
def _query_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_QUERY_WORKERS, thread_name_prefix="directory-query")


def practice_from_item(partition: str, item: dict[str, Any]) -> ListedPractice:
    """A stored practice, read straight from the wire format. Items are written only by this module
    (directory_item), so their shape is known: no TypeDeserializer (Decimals), no validation; the
    listing's values are ListedPractice's fields after its keys, in order (LISTING_FIELDS)."""
    from msp.directory import ListedPractice

    sort_key = item["sk"]["S"]
    return ListedPractice(partition, sort_key, sort_key.split("#", 1)[1], *json.loads(item["listing"]["S"]))


class DirectoryStore:
    """The directory behind the search port (one Query per sort-key range, a step's ranges at once), the
    density hint (one GetItem per warm function every few minutes) and the public profiles."""

    def __init__(self, table: str, *, page_size: int | None = None, concurrent: bool = True):
        self.table = table
        self.page_size = page_size  # tests make Queries paginate with a small one
        self.concurrent = concurrent  # the benchmark compares with one Query after the other
        # region -> (when read, its counters): the density hint's cache in a warm function
        self._regions: dict[str, tuple[float, dict[str, int]]] = {}

    def query_range(self, partition: str, low: str, high: str) -> list[ListedPractice]:
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":low": {"S": low}, ":high": {"S": high}},
            "ProjectionExpression": LISTING_PROJECTION,
            "ExpressionAttributeNames": LISTING_NAMES,
        }
        if self.page_size:
            arguments["Limit"] = self.page_size
        practices: list[ListedPractice] = []
        while True:
            with aws_errors():
                page = dynamodb_client().query(**arguments)
            practices.extend(practice_from_item(partition, item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return practices
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def query_ranges(self, ranges: Sequence[KeyRange]) -> list[ListedPractice]:
        """Every range's items, the Queries running concurrently (boto3 clients are thread-safe)."""
        if len(ranges) == 1 or not self.concurrent:
            return [practice for key_range in ranges for practice in self.query_range(*key_range)]
        # The first range on this thread, the others on the pool's.
        futures = [_query_pool().submit(self.query_range, *key_range) for key_range in ranges[1:]]
        first = self.query_range(*ranges[0])
        return first + [practice for future in futures for practice in future.result()]

    def density_counts(self, regions: Sequence[str]) -> Mapping[str, int] | None:
        """Listed practices per density cell of these regions, as last read (at most DENSITY_MAX_AGE seconds
        ago): one BatchGetItem for the regions not read yet, or read too long ago. None when unreadable."""
        now = time.monotonic()
        stale = [region for region in regions if now - self._regions.get(region, (-math.inf, {}))[0] > DENSITY_MAX_AGE]
        if stale:
            try:
                self._read_regions(stale, now)
            except (ClientError, ServiceUnavailable):
                # Only a hint: a search without it is as exact, it just reads a step or two more.
                log.warning("directory density counters unreadable; searching without them", exc_info=True)
                if any(region not in self._regions for region in regions):
                    return None
        return _RegionCounters({region: self._regions.get(region, (0.0, {}))[1] for region in regions})

    def _read_regions(self, regions: list[str], now: float) -> None:
        found: dict[str, dict[str, int]] = {region: {} for region in regions}
        pending: dict[str, Any] = {self.table: {"Keys": [_density_key(region) for region in regions]}}
        for attempt in range(_BATCH_READ_ATTEMPTS):
            with aws_errors():
                response = dynamodb_client().batch_get_item(RequestItems=pending)
            for item in response.get("Responses", {}).get(self.table, []):
                region = item["pk"]["S"].removeprefix(DENSITY_PREFIX)
                found[region] = {name: int(value["N"]) for name, value in item.items() if "N" in value}
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto
        for region, counters in found.items():
            self._regions[region] = (now, counters)

    def density_per_km2(self, lat: float, lon: float) -> float | None:
        from msp.directory import density_from_counts, density_regions_around

        return density_from_counts(self.density_counts(density_regions_around(lat, lon)), lat, lon)

    def profile(self, psychologist_id: str) -> PublicProfile | None:
        from msp.directory import PublicProfile

        with aws_errors():
            item = dynamodb_client().get_item(TableName=self.table, Key=_profile_key(psychologist_id)).get("Item")
        return PublicProfile.model_validate(_without_keys(from_item(item))) if item else None

    def recount_density(self) -> dict[str, int]:
        """Rebuild the counters from the stored practices (a repair, or after a bulk load that bypassed the
        review transaction); a Scan, never used by a route. Returns the counters, by density cell."""
        from msp.cellkeys import fine_cell_of
        from msp.directory import density_region

        counts: dict[str, int] = {}
        stored_regions: list[dict[str, Any]] = []
        # Small pages: each stays well within the client's read timeout.
        arguments: dict[str, Any] = {"TableName": self.table, "ProjectionExpression": "pk, sk", "Limit": 2000}
        while True:
            with aws_errors():
                page = dynamodb_client().scan(**arguments)
            for item in page["Items"]:
                pk = item["pk"]["S"]
                if pk.startswith(DENSITY_PREFIX):
                    stored_regions.append(item)
                elif not pk.startswith(PROFILE_PREFIX):
                    cell = _density_cell_of(fine_cell_of(item["sk"]["S"]))
                    counts[cell] = counts.get(cell, 0) + 1
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        regions: dict[str, dict[str, int]] = {}
        for cell, count in counts.items():
            regions.setdefault(density_region(cell), {})[cell] = count
        self.write_density(regions)
        with aws_errors():
            for key in stored_regions:
                if key["pk"]["S"].removeprefix(DENSITY_PREFIX) not in regions:
                    dynamodb_client().delete_item(TableName=self.table, Key=key)
        return counts

    def write_density(self, regions: dict[str, dict[str, int]]) -> None:
        """Replace the counters of these regions (by region, then density cell), e.g. after a bulk load."""
        with aws_errors():
            for region, counters in regions.items():
                item = _density_key(region) | {cell: {"N": str(count)} for cell, count in counters.items()}
                dynamodb_client().put_item(TableName=self.table, Item=item)
        self._regions.clear()


class _RegionCounters(Mapping[str, int]):
    """The counters of a few regions seen as one mapping, by density cell, without copying them: a hint
    looks up a few dozen cells, where merging the regions' dicts would copy thousands."""

    def __init__(self, regions: dict[str, dict[str, int]]):
        self._regions = regions

    def __getitem__(self, cell: str) -> int:
        import h3

        from msp.directory import DENSITY_REGION_RESOLUTION

        return self._regions[h3.cell_to_parent(cell, DENSITY_REGION_RESOLUTION)][cell]

    def __iter__(self) -> Iterator[str]:
        return (cell for counters in self._regions.values() for cell in counters)

    def __len__(self) -> int:
        return sum(len(counters) for counters in self._regions.values())


def _density_cell_of(fine: str) -> str:
    import h3

    from msp.directory import DENSITY_RESOLUTION

    return h3.cell_to_parent(fine, DENSITY_RESOLUTION)


# ---------------------------------------------------------------- psychologists' conventions
#
# The review workflow writes one item per accepted psychologist in the application table, in the same
# transaction as the acceptance (convention_put) and again on deconvention. Declaring and cancelling
# sessions check it inside their own transaction, so a psychologist deconventioned a millisecond earlier
# is refused.

CONVENTION_ACCEPTED = "accepted"
ConventionStatus = Literal["accepted", "deconventioned"]


def _convention_key(psychologist_sub: str) -> dict[str, Any]:
    return {"pk": {"S": f"PSYCHOLOGIST#{psychologist_sub}"}, "sk": {"S": "CONVENTION"}}


def convention_put(
    *,
    psychologist_sub: str,
    status: ConventionStatus,
    candidature_id: str,
    psychologist_id: str,
    department: str,
    updated_at: str,
) -> dict[str, Any]:
    """The convention item as a transaction Put, for the review workflow's accept/deconvention write."""
    if status not in ("accepted", "deconventioned"):
        raise ValueError(f"unknown convention status {status!r}")
    data = {
        "status": status,
        "candidature_id": candidature_id,
        "psychologist_id": psychologist_id,
        "psychologist_sub": psychologist_sub,
        "department": department,
        "updated_at": updated_at,
    }
    return {"Put": {"TableName": settings().app_table, "Item": _convention_key(psychologist_sub) | to_item(data)}}


def record_convention(**fields: Any) -> None:
    """Write the convention item on its own (demo data, tests); see convention_put for its fields."""
    with aws_errors():
        dynamodb_client().put_item(**convention_put(**fields)["Put"])


def _not_conventioned() -> Forbidden:
    return Forbidden(
        "Only a psychologist whose candidature is accepted (conventionné) can declare, cancel or look up sessions.",
        code="not_conventioned",
    )


def _require_accepted(convention: dict[str, Any] | None) -> dict[str, Any]:
    if convention is None or convention.get("status") != CONVENTION_ACCEPTED:
        raise _not_conventioned()
    return convention


# ---------------------------------------------------------------- sessions and per-patient yearly counters
#
# Layout and the reason for it: see SessionsTable in template.yaml.

TALLY_INDEX = "ByYear"
TALLY_SHARDS = 16  # changing it means rewriting year_shard on every item
_DECLARATION_ATTEMPTS = 16
_BATCH_READ_ATTEMPTS = 5


def _counter_key(patient_key: str, year: int) -> dict[str, Any]:
    return {"pk": {"S": f"PATIENT#{patient_key}"}, "sk": {"S": f"YEAR#{year}"}}


def _session_key(session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "SESSION"}}


def year_shard(patient_key: str, year: int) -> str:
    """The ByYear partition of a patient's counter and sessions: the patient key's digest spreads patients."""
    digest = patient_key.rsplit(":", 1)[-1]
    return f"{year}#{int(digest[:8], 16) % TALLY_SHARDS:02d}"


def _same_request(stored: dict[str, Any], session: SessionRecord) -> bool:
    if stored.get("psychologist_sub") != session.psychologist_sub:
        return False
    if "request_digest" in stored and session.request_digest is not None:
        return stored["request_digest"] == session.request_digest
    # A session stored without the digest: its fields are all there is to compare.
    return (
        stored.get("patient_key") == session.patient_key
        and stored.get("date") == session.date.isoformat()
        and stored.get("first_session") == session.first_session
        and stored.get("tiers_payant_reason") == session.tiers_payant_reason
    )


def _recorded_answer(stored: dict[str, Any], session: SessionRecord) -> DeclaredSession:
    """The answer given when this session was declared, from the session item alone (not the counter as it is
    now, nor today's policy); another declaration under the same session id is refused."""
    from msp.sessions import DeclaredSession

    if not _same_request(stored, session) or "ordinal" not in stored:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different body: use a new key.",
            code="idempotency_key_reused",
        )
    return DeclaredSession(
        session_id=stored["session_id"],
        year=int(stored["year"]),
        used=int(stored["ordinal"]),
        quota=int(stored["quota"]),
        amounts={name: stored[name] for name in ("price", "amo", "amc", "patient_advance")},
    )


def _session_item(session: SessionRecord, department: str | None, ordinal: int) -> dict[str, Any]:
    amounts = session.amounts
    item = _session_key(session.session_id) | to_item(
        {
            "session_id": session.session_id,
            "patient_key": session.patient_key,
            "key_id": session.key_id,
            "psychologist_sub": session.psychologist_sub,
            "department": department,
            "date": session.date.isoformat(),
            "year": session.year,
            "first_session": session.first_session,
            "tiers_payant_reason": session.tiers_payant_reason,
            "quota": session.quota,
            "ordinal": ordinal,  # the patient's count for the year with this session: the declaration's answer
            "request_digest": session.request_digest,  # tells a replay from another body under the same id
            "rule_valid_from": session.rule_valid_from.isoformat(),
            "created_at": session.created_at,
            "year_shard": year_shard(session.patient_key, session.year),
            "tally_sk": f"PATIENT#{session.patient_key}#SESSION#{session.session_id}",
        }
    )
    # Euros as exact DynamoDB numbers, so the tally can add them up.
    for name in ("price", "amo", "amc", "patient_advance"):
        item[name] = {"N": str(getattr(amounts, name))}
    return item


class SessionStore:
    """Declared sessions and the per-patient yearly counters they count against (SessionsTable), checked
    against the psychologists' conventions (application table)."""

    def __init__(self, sessions_table: str, app_table: str):
        self.sessions_table = sessions_table
        self.app_table = app_table

    def _state(
        self, psychologist_sub: str, patient_key: str, year: int, session_id: str | None = None
    ) -> tuple[dict[str, Any] | None, int, dict[str, Any] | None]:
        """The psychologist's convention, the patient's count for the year and, when asked, the session with
        this id if it is already stored: one consistent BatchGetItem."""
        sessions_keys = [_counter_key(patient_key, year)]
        if session_id is not None:
            sessions_keys.append(_session_key(session_id))
        pending: dict[str, Any] = {
            self.app_table: {"Keys": [_convention_key(psychologist_sub)], "ConsistentRead": True},
            self.sessions_table: {"Keys": sessions_keys, "ConsistentRead": True},
        }
        found: dict[str, list[dict[str, Any]]] = {}
        for attempt in range(_BATCH_READ_ATTEMPTS):
            with aws_errors():
                response = dynamodb_client().batch_get_item(RequestItems=pending)
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not crypto
        else:
            raise _unavailable()
        conventions = found.get(self.app_table, [])
        convention = from_item(conventions[0]) if conventions else None
        used, existing = 0, None
        for item in map(from_item, found.get(self.sessions_table, [])):
            if item["pk"].startswith("SESSION#"):
                existing = item
            else:
                used = int(item.get("used", 0))
        return convention, used, existing

    def _convention_check(self, psychologist_sub: str, department: str | None) -> dict[str, Any]:
        condition = "#status = :accepted"
        values = {":accepted": {"S": CONVENTION_ACCEPTED}}
        if department is None:
            condition += " AND attribute_not_exists(department)"
        else:
            condition += " AND department = :department"
            values[":department"] = {"S": department}
        return {
            "ConditionCheck": {
                "TableName": self.app_table,
                "Key": _convention_key(psychologist_sub),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _count(self, session: SessionRecord, seen: int) -> dict[str, Any]:
        """The counter goes from `seen` to `seen + 1`, only if it still reads `seen` and is under the quota."""
        condition = "#used = :seen AND #used < :quota"
        if seen == 0:
            condition = f"attribute_not_exists(#used) OR ({condition})"
        return {
            "Update": {
                "TableName": self.sessions_table,
                "Key": _counter_key(session.patient_key, session.year),
                "UpdateExpression": (
                    "SET #used = :next, patient_key = :patient, key_id = :key_id, #year = :year, "
                    "year_shard = :shard, tally_sk = :tally, updated_at = :now"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#used": "used", "#year": "year"},
                "ExpressionAttributeValues": to_item(
                    {
                        ":seen": seen,
                        ":next": seen + 1,
                        ":quota": session.quota,
                        ":patient": session.patient_key,
                        ":key_id": session.key_id,
                        ":year": session.year,
                        ":shard": year_shard(session.patient_key, session.year),
                        ":tally": f"PATIENT#{session.patient_key}#COUNTER",
                        ":now": session.created_at,
                    }
                ),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def record_declaration(self, session: SessionRecord) -> DeclaredSession:
        """Count the session against the patient's year and store it; the answer: the sessions used, this one
        included, against the quota, and what the session costs.

        One consistent read (convention, counter, and this session id in case it is already stored), then one
        transaction: the convention still accepted, the counter moved from what was read to one more under
        the quota, the session put. When another declaration or a cancellation moved the counter in between,
        the transaction's refusal carries the new count (ALL_OLD) and the next attempt uses it, without
        reading again. The session item is the declaration's idempotency record: a session id already stored
        (found by the read, or by the Put's refusal when the same request raced this one) means this
        declaration was already recorded, by an earlier call that crashed or whose answer was lost: the
        answer recorded with it is given again and nothing is counted twice. A cancelled session leaves its
        record (see cancel), so its Idempotency-Key still answers the same and never declares it again.
        """
        from msp.sessions import DeclaredSession, quota_exhausted

        convention, used, existing = self._state(
            session.psychologist_sub, session.patient_key, session.year, session.session_id
        )
        for _ in range(_DECLARATION_ATTEMPTS):
            if existing is not None:
                return _recorded_answer(existing, session)
            department = _require_accepted(convention).get("department")
            if used >= session.quota:
                raise quota_exhausted(session.year, used, session.quota)
            items = [
                self._convention_check(session.psychologist_sub, department),
                self._count(session, used),
                {
                    "Put": {
                        "TableName": self.sessions_table,
                        "Item": _session_item(session, department, ordinal=used + 1),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
            try:
                transact_write(items)
            except ClientError as error:
                reasons = cancellations(error)
                if len(reasons) != len(items) or not any(_check_failed(reason) for reason in reasons):
                    raise
                convention_reason, counter_reason, session_reason = reasons
                if _check_failed(session_reason):
                    existing = from_item(session_reason.get("Item", {}))
                if _check_failed(convention_reason):
                    convention = from_item(convention_reason["Item"]) if "Item" in convention_reason else None
                if _check_failed(counter_reason):
                    used = int(from_item(counter_reason.get("Item", {})).get("used", 0))
                continue
            return DeclaredSession(
                session_id=session.session_id,
                year=session.year,
                used=used + 1,
                quota=session.quota,
                amounts=session.amounts,
            )
        raise _unavailable()

    def sessions_used(self, psychologist_sub: str, patient_key: str, year: int) -> int:
        """The patient's count for the year, for a psychologist with an accepted convention."""
        convention, used, _ = self._state(psychologist_sub, patient_key, year)
        _require_accepted(convention)
        return used

    def cancel(self, session_id: str, psychologist_sub: str, current_year: int) -> None:
        """Cancel a session of the current year declared by this psychologist, and count it back, atomically.

        The session item stays as the record of its declaration's Idempotency-Key (a replay answers what it
        answered, and does not declare it again), stripped of the patient key and of the ByYear keys: it no
        longer counts, the tally no longer sees it and it no longer links to the patient."""
        with aws_errors():
            found = (
                dynamodb_client()
                .get_item(TableName=self.sessions_table, Key=_session_key(session_id), ConsistentRead=True)
                .get("Item")
            )
        session = from_item(found) if found else None
        # Someone else's session, or one already cancelled, answers exactly like a missing one.
        if session is None or session.get("psychologist_sub") != psychologist_sub or "cancelled_at" in session:
            raise NotFound("No session with this id.")
        year = int(session["year"])
        if year != current_year:
            raise Conflict(
                f"Only sessions of {current_year} can be cancelled; this one counts in {year}.",
                code="session_not_cancellable",
            )
        now = now_iso()
        items = [
            {
                "ConditionCheck": {
                    "TableName": self.app_table,
                    "Key": _convention_key(psychologist_sub),
                    "ConditionExpression": "#status = :accepted",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":accepted": {"S": CONVENTION_ACCEPTED}},
                }
            },
            {
                "Update": {
                    "TableName": self.sessions_table,
                    "Key": _session_key(session_id),
                    "UpdateExpression": (
                        "SET cancelled_at = :now REMOVE patient_key, key_id, department, year_shard, tally_sk"
                    ),
                    "ConditionExpression": (
                        "attribute_exists(pk) AND psychologist_sub = :psychologist "
                        "AND attribute_not_exists(cancelled_at)"
                    ),
                    "ExpressionAttributeValues": {":psychologist": {"S": psychologist_sub}, ":now": {"S": now}},
                }
            },
            {
                "Update": {
                    "TableName": self.sessions_table,
                    "Key": _counter_key(session["patient_key"], year),
                    "UpdateExpression": "SET #used = #used - :one, updated_at = :now",
                    "ConditionExpression": "#used > :zero",
                    "ExpressionAttributeNames": {"#used": "used"},
                    "ExpressionAttributeValues": to_item({":one": 1, ":zero": 0, ":now": now}),
                }
            },
        ]
        try:
            transact_write(items)
        except ClientError as error:
            failed = [_check_failed(reason) for reason in cancellations(error)]
            if len(failed) != len(items):
                raise
            if failed[0]:
                raise _not_conventioned() from error
            if failed[1]:
                raise NotFound("No session with this id.") from error  # cancelled meanwhile
            raise

    def year_items(self, year: int) -> Iterator[dict[str, Any]]:
        """Every counter and session of a year, shard by shard, each patient's counter before their sessions."""
        for shard in range(TALLY_SHARDS):
            arguments: dict[str, Any] = {
                "TableName": self.sessions_table,
                "IndexName": TALLY_INDEX,
                "KeyConditionExpression": "year_shard = :shard",
                "ExpressionAttributeValues": {":shard": {"S": f"{year}#{shard:02d}"}},
            }
            while True:
                with aws_errors():
                    page = dynamodb_client().query(**arguments)
                yield from (from_item(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------ the yearly tally
    #
    # The tally reads a year shard by shard through ByYear, in index order: each patient's counter, then their
    # sessions. Only the attributes it counts are asked for; the keys come back in LastEvaluatedKey anyway.

    def year_pages(
        self, year: int, shard: int, start_key: dict[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[tuple[list[Row], dict[str, Any] | None]]:
        """The shard's rows page by page, each with the key to resume after it (None after the last page)."""
        arguments: dict[str, Any] = {
            "TableName": self.sessions_table,
            "IndexName": TALLY_INDEX,
            "KeyConditionExpression": "year_shard = :shard",
            "ExpressionAttributeValues": {":shard": {"S": f"{year}#{shard:02d}"}},
            "ProjectionExpression": _TALLY_PROJECTION,
            "ExpressionAttributeNames": {"#date": "date"},
        }
        if page_size:
            arguments["Limit"] = page_size
        if start_key:
            arguments["ExclusiveStartKey"] = start_key
        client = bulk_dynamodb_client()
        while True:
            with aws_errors():
                page = client.query(**arguments)
            last_key = page.get("LastEvaluatedKey")
            yield _tally_rows(page.get("Items", [])), last_key
            if last_key is None:
                return
            arguments["ExclusiveStartKey"] = last_key

    def repair_counter(
        self,
        patient_key: str,
        year: int,
        *,
        seen: int | None,
        seen_updated_at: str | None,
        sessions: int,
        run_id: str,
        now: str,
    ) -> str:
        """Set a drifted counter to the sessions found, only if it still holds what the tally read.

        The condition makes the write safe against a declaration or cancellation in between (the counter then
        moved: CHANGED_SINCE_READ) and makes it idempotent: run again by a resumed tally, it finds the counter
        already repaired by this run and says so.
        """
        from msp.tally import CHANGED_SINCE_READ, REPAIRED

        key = _counter_key(patient_key, year)
        values = {":counted": sessions, ":now": now, ":run": run_id}
        if seen is None:
            update = {
                "UpdateExpression": (
                    "SET #used = :counted, patient_key = :patient, key_id = :key_id, #year = :year, "
                    "year_shard = :shard, tally_sk = :tally, updated_at = :now, repaired_by = :run"
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeNames": {"#used": "used", "#year": "year"},
            }
            values |= {
                ":patient": patient_key,
                ":key_id": patient_key.split(":", 1)[0],
                ":year": year,
                ":shard": year_shard(patient_key, year),
                ":tally": f"PATIENT#{patient_key}#COUNTER",
            }
        else:
            update = {
                "UpdateExpression": (
                    "SET #used = :counted, updated_at = :now, repaired_by = :run, repaired_from = :seen"
                ),
                "ConditionExpression": "#used = :seen AND updated_at = :seen_updated",
                "ExpressionAttributeNames": {"#used": "used"},
            }
            values[":seen"] = seen
            if seen_updated_at is None:
                update["ConditionExpression"] = "#used = :seen AND attribute_not_exists(updated_at)"
            else:
                values[":seen_updated"] = seen_updated_at
        client = dynamodb_client()
        try:
            with aws_errors():
                client.update_item(
                    TableName=self.sessions_table, Key=key, ExpressionAttributeValues=to_item(values), **update
                )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            with aws_errors():
                found = client.get_item(TableName=self.sessions_table, Key=key, ConsistentRead=True).get("Item")
            current = from_item(found) if found else {}
            if current.get("repaired_by") == run_id and int(current.get("used", -1)) == sessions:
                return REPAIRED
            return CHANGED_SINCE_READ
        return REPAIRED

    def import_sessions(
        self,
        sessions: Sequence[tuple[SessionRecord, str | None]],
        *,
        workers: int = 8,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Write sessions already counted elsewhere, with their patients' counters (synthetic data, benchmarks).

        No convention or quota check: BatchWriteItem, 25 items a request, in parallel threads. Each
        patient-year's counter is set to the number of its sessions given here; sessions are (record, the
        psychologist's department). Returns the number of items written.
        """
        by_patient: dict[tuple[str, int], list[tuple[SessionRecord, str | None]]] = {}
        for record, department in sessions:
            by_patient.setdefault((record.patient_key, record.year), []).append((record, department))
        items: list[dict[str, Any]] = []
        for (patient, year), declared in by_patient.items():
            declared.sort(key=lambda pair: (pair[0].date, pair[0].created_at, pair[0].session_id))
            for ordinal, (record, department) in enumerate(declared, start=1):
                items.append(_session_item(record, department, ordinal))
            items.append(_counter_item(patient, year, len(declared), declared[-1][0].created_at))
        batches = [items[start : start + 25] for start in range(0, len(items), 25)]
        written, lock = 0, threading.Lock()

        def send(batch: list[dict[str, Any]]) -> None:
            nonlocal written
            pending = {self.sessions_table: [{"PutRequest": {"Item": item}} for item in batch]}
            for attempt in range(10):
                with aws_errors():
                    response = bulk_dynamodb_client().batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto
            else:
                raise _unavailable()
            with lock:
                written += len(batch)
                if progress is not None:
                    progress(written, len(items))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(send, batches))
        return written


_TALLY_PROJECTION = (
    "tally_sk, psychologist_sub, department, #date, price, amo, amc, patient_advance, tiers_payant_reason, "
    "rule_valid_from, used, updated_at"
)
_COUNTER_SUFFIX = "#COUNTER"
_SESSION_MARK = "#SESSION#"
_PATIENT_PREFIX = "PATIENT#"


def _cents(number: str) -> int:
    """A stored amount in euros ("50", "30.5", "12.34") as integer cents, exactly."""
    value = Decimal(number).scaleb(2)
    cents = int(value)
    if cents != value:
        raise ValueError(f"an amount with a fraction of a cent is stored: {number}")
    return cents


def _tally_rows(items: list[dict[str, Any]]) -> list[Row]:
    """Raw ByYear items as the tally's rows, without boto3's generic deserialiser (the year is many items)."""
    from msp.tally import CounterRow, SessionRow  # once a page, not once an item

    rows: list[Row] = []
    for item in items:
        tally_sk = item["tally_sk"]["S"].removeprefix(_PATIENT_PREFIX)
        if tally_sk.endswith(_COUNTER_SUFFIX):
            rows.append(
                CounterRow(
                    patient_key=tally_sk.removesuffix(_COUNTER_SUFFIX),
                    used=int(item["used"]["N"]) if "used" in item else 0,
                    updated_at=item["updated_at"]["S"] if "updated_at" in item else "",
                )
            )
            continue
        reason = item.get("tiers_payant_reason")
        department = item.get("department")
        rows.append(
            SessionRow(
                patient_key=tally_sk[: tally_sk.index(_SESSION_MARK)],
                psychologist_sub=item["psychologist_sub"]["S"],
                department=department["S"] if department else "",
                date=item["date"]["S"],
                price=_cents(item["price"]["N"]),
                amo=_cents(item["amo"]["N"]),
                amc=_cents(item["amc"]["N"]),
                patient_advance=_cents(item["patient_advance"]["N"]),
                tiers_payant_reason=reason["S"] if reason else None,
                rule_valid_from=item["rule_valid_from"]["S"],
            )
        )
    return rows


def _counter_item(patient_key: str, year: int, used: int, updated_at: str) -> dict[str, Any]:
    """A counter as a declaration leaves it (see SessionStore._count)."""
    return _counter_key(patient_key, year) | to_item(
        {
            "used": used,
            "patient_key": patient_key,
            "key_id": patient_key.split(":", 1)[0],
            "year": year,
            "year_shard": year_shard(patient_key, year),
            "tally_sk": f"PATIENT#{patient_key}#COUNTER",
            "updated_at": updated_at,
        }
    )


# ---------------------------------------------------------------- the tally's reports and its work in progress
#
# Reports go to reports/<year>/<run id>/ in the documents bucket, with reports/<year>/latest.json naming the
# last complete one. A run in progress keeps its plan and one checkpoint per shard under tally-work/ (expired by
# the bucket's lifecycle): each checkpoint is one object holding the shard's counts and the index key they stop
# at, written whole, so a run resumed from any of them never counts a page twice.

REPORTS_PREFIX = "reports"
TALLY_WORK_PREFIX = "tally-work"


def report_prefix(year: int, run_id: str) -> str:
    return f"{REPORTS_PREFIX}/{year}/{run_id}/"


def latest_key(year: int) -> str:
    return f"{REPORTS_PREFIX}/{year}/latest.json"


def _work_prefix(year: int, run_id: str) -> str:
    return f"{TALLY_WORK_PREFIX}/{year}/{run_id}/"


class ReportStore:
    def __init__(self, bucket: str):
        self.bucket = bucket

    def _put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._put(key, body, "application/json")

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        with aws_errors():
            s3_client().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def _get_json(self, key: str) -> Any:
        with aws_errors():
            body = s3_client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(body)

    def _exists(self, key: str) -> bool:
        with aws_errors():
            listed = s3_client().list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(entry["Key"] == key for entry in listed.get("Contents", []))

    def run_state(self, year: int, run_id: str) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
        """A run's manifest and its shards' checkpoints, as far as they were saved (one listing, then reads)."""
        prefix = _work_prefix(year, run_id)
        keys: list[str] = []
        arguments = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            with aws_errors():
                listed = s3_client().list_objects_v2(**arguments)
            keys.extend(entry["Key"] for entry in listed.get("Contents", []))
            if not listed.get("IsTruncated"):
                break
            arguments["ContinuationToken"] = listed["NextContinuationToken"]
        manifest = self._get_json(f"{prefix}run.json") if f"{prefix}run.json" in keys else None
        shards = {}
        for key in keys:
            name = key.removeprefix(prefix)
            if name.startswith("shard-") and name.endswith(".json"):
                checkpoint = self._get_json(key)
                shards[int(checkpoint["shard"])] = checkpoint
        return manifest, shards

    def save_run(self, year: int, run_id: str, manifest: dict[str, Any]) -> None:
        self._put_json(f"{_work_prefix(year, run_id)}run.json", manifest)

    def save_checkpoint(self, year: int, run_id: str, shard: int, checkpoint: dict[str, Any]) -> None:
        self._put_json(f"{_work_prefix(year, run_id)}shard-{shard:02d}.json", checkpoint)

    def write_report(self, year: int, run_id: str, files: dict[str, tuple[bytes, str]]) -> None:
        prefix = report_prefix(year, run_id)
        for name, (body, content_type) in files.items():
            self._put(f"{prefix}{name}", body, content_type)

    def set_latest(self, year: int, pointer: dict[str, Any]) -> None:
        """Written after every file of the report, so it never names a report still being written."""
        self._put_json(latest_key(year), pointer)

    def latest(self, year: int) -> dict[str, Any] | None:
        """The pointer to the year's last complete report; None when no tally has completed for that year."""
        key = latest_key(year)
        try:
            return self._get_json(key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in {"NoSuchKey", "404"}:
                return None
            # Without s3:ListBucket S3 answers a missing key with 403; the listing tells absent from forbidden.
            if code == "AccessDenied" and not self._exists(key):
                return None
            raise

    def read_json(self, key: str) -> Any:
        return self._get_json(key)


def invoke_async(function_name: str, payload: dict[str, Any]) -> None:
    """Start another invocation of a function (a job continuing in a fresh one), without waiting for it."""
    client = boto3.client("lambda", region_name=settings().region, config=_BOTO_CONFIG)
    with aws_errors():
        client.invoke(FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode())


# ---------------------------------------------------------------- the patient key's secret

PATIENT_KEY_MAX_AGE = 300  # seconds a warm function keeps the secret before reading it again


@cache
def _secrets_provider():
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto_config=_SERVICE_CONFIG)


@lru_cache(maxsize=4)
def _keyring(document: str) -> PatientKeyring:
    from msp.sessions import PatientKeyring

    return PatientKeyring.from_secret(document)


def patient_keyring() -> PatientKeyring:
    """The patient key versions: from Secrets Manager (cached by Powertools), or the local stack's dev value."""
    config = settings()
    if config.patient_key_dev_secret is not None:
        return _keyring(config.patient_key_dev_secret.get_secret_value())
    if not config.patient_key_secret_arn:
        raise RuntimeError("PATIENT_KEY_SECRET_ARN is not set: this function was not given the patient key secret")
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        document = _secrets_provider().get(config.patient_key_secret_arn, max_age=PATIENT_KEY_MAX_AGE)
    except GetParameterError as error:
        cause = error.__cause__
        throttled = isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in _THROTTLING_CODES
        if throttled or isinstance(cause, BotoCoreError):
            raise _unavailable() from error
        raise
    return _keyring(document if isinstance(document, str) else document.decode())


@cache
def candidature_store() -> CandidatureStore:
    return CandidatureStore(settings().app_table)


@cache
def document_bucket() -> DocumentBucket:
    return DocumentBucket(settings().documents_bucket)


@cache
def review_queue_store() -> ReviewQueueStore:
    return ReviewQueueStore(settings().app_table, settings().cursor_secret)


@cache
def decision_publisher() -> DecisionPublisher:
    return DecisionPublisher(settings().event_bus)


@cache
def mailer() -> SesMailer | OutboxMailer:
    if settings().mail_outbox_dir:
        return OutboxMailer(settings().mail_from, Path(settings().mail_outbox_dir))
    return SesMailer(settings().mail_from)


@cache
def directory_store() -> DirectoryStore:
    return DirectoryStore(settings().directory_table)


@cache
def session_store() -> SessionStore:
    return SessionStore(settings().sessions_table, settings().app_table)


@cache
def report_store() -> ReportStore:
    return ReportStore(settings().documents_bucket)
