"""The review queue: Queries on the sparse ReviewQueue indexes of the application table, never a Scan."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from msp import cursors
from msp.config import settings
from msp.errors import InvalidCursor
from msp.storage.aws import aws_errors, condition_failed, dynamodb_client, from_item, pages
from msp.storage.secrets import queue_cursor_keys

if TYPE_CHECKING:
    from msp.candidatures.models import QueueEntry, QueuePage, Status


QUEUE_INDEX = "ReviewQueue"
NATIONAL_QUEUE_INDEX = "ReviewQueueNational"


def _queue_entry(item: dict[str, Any]) -> tuple[str, QueueEntry]:
    from msp.candidatures.models import QueueEntry

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

    def __init__(self, table: str, cursor_keys: Callable[[], cursors.CursorKeys]):
        self.table = table
        # Read for each page: the keys rotate (storage/secrets.py caches them).
        self.cursor_keys = cursor_keys

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
        entries: list[tuple[str, QueueEntry]] = []
        for page in pages(dynamodb_client().query, arguments):
            entries.extend(_queue_entry(item) for item in page["Items"])
            if len(entries) >= wanted:
                break
        return entries[:wanted]

    def page(self, status: Status, departments: list[str] | None, limit: int, cursor: str | None) -> QueuePage:
        """`departments` None means every department (one partition of the national index)."""
        from msp.candidatures.models import QueuePage

        context = f"review-queue|{status.value}|{'*' if departments is None else ','.join(sorted(departments))}"
        keys = self.cursor_keys()
        after = None
        if cursor:
            position = cursors.open_sealed(cursor, context=context, keys=keys)
            after = position.get("after")
            if not isinstance(after, str):
                raise InvalidCursor("The cursor is invalid: ask for the first page again.")
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
            position = {"after": merged[limit - 1][0]}
            next_cursor = cursors.seal(position, context=context, keys=keys, lifetime=cursors.LIST_CURSOR_LIFETIME)
        return QueuePage(results=[entry for _, entry in merged[:limit]], next_cursor=next_cursor)


# ---------------------------------------------------------------- decision events


DECISION_SOURCE = "msp.candidatures.review"
DECISION_DETAIL_TYPE = "CandidatureDecision"


class DigestStore:
    """What the reviewers' daily digest reads (the national queue index, by submission time) and the marker
    that makes it go out once a day."""

    def __init__(self, table: str):
        self.table = table

    def submitted_between(self, start: str, end: str) -> list[QueueEntry]:
        """Candidatures still `submitted` whose submission time is in [start, end) (ISO, UTC)."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": NATIONAL_QUEUE_INDEX,
            "KeyConditionExpression": "review_status = :submitted AND review_sk BETWEEN :start AND :end",
            "ExpressionAttributeValues": {
                ":submitted": {"S": "submitted"},
                ":start": {"S": start},
                ":end": {"S": end},
            },
        }
        return [_queue_entry(item)[1] for page in pages(dynamodb_client().query, arguments) for item in page["Items"]]

    def claim_digest(self, reference: str) -> bool:
        """Mark the digest message `reference` (its day and scope) as sent; False when it already was (a schedule
        delivered twice)."""
        try:
            with aws_errors():
                dynamodb_client().put_item(
                    TableName=self.table,
                    Item={"pk": {"S": f"DIGEST#{reference}"}, "sk": {"S": "SENT"}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def release_digest(self, reference: str) -> None:
        key = {"pk": {"S": f"DIGEST#{reference}"}, "sk": {"S": "SENT"}}
        with aws_errors():
            dynamodb_client().delete_item(TableName=self.table, Key=key)


@cache
def digest_store() -> DigestStore:
    return DigestStore(settings().app_table)


@cache
def review_queue_store() -> ReviewQueueStore:
    return ReviewQueueStore(settings().app_table, queue_cursor_keys)
