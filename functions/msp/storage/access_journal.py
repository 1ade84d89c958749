"""AccessJournalTable: the access journal and each psychologist's distinct patients looked up per day.

  entry    pk=JOURNAL#<psychologist sub>  sk=<at>#<entry id>   action, outcome, patient key, session id, at
  lookups  pk=LOOKUPS#<psychologist sub>  sk=<Paris day>        patients (string set of patient keys)

Both expire through the table's TTL attribute: entries after the retention period the template sets, the
daily sets the day after theirs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from msp import cursors
from msp.config import settings
from msp.storage.aws import (
    aws_errors,
    cancellations,
    check_failed,
    dynamodb_client,
    from_item,
    to_item,
    transact_write,
)
from msp.storage.secrets import queue_cursor_keys

if TYPE_CHECKING:
    from msp.sessions.journal import JournalEntry

TTL_ATTRIBUTE = "expires_at"
_DAY_SECONDS = 86_400


def _epoch(iso_moment: str) -> int:
    return int(dt.datetime.fromisoformat(iso_moment.replace("Z", "+00:00")).timestamp())


class AccessJournalStore:
    def __init__(self, table: str, retention_days: int, cursor_keys: Callable[[], cursors.CursorKeys]):
        self.table = table
        self.retention_seconds = retention_days * _DAY_SECONDS
        # Only the listing route is given the cursor secret (see template.yaml): read when it lists.
        self.cursor_keys = cursor_keys

    def entry_put(self, entry: JournalEntry) -> dict[str, Any]:
        """The entry as a transaction Put, so a declaration or cancellation journals itself in its own write."""
        data = {
            "psychologist_sub": entry.psychologist_sub,
            "action": entry.action,
            "outcome": entry.outcome,
            "at": entry.at,
            "patient_key": entry.patient_key,
            "session_id": entry.session_id,
            TTL_ATTRIBUTE: _epoch(entry.at) + self.retention_seconds,
        }
        key = {"pk": f"JOURNAL#{entry.psychologist_sub}", "sk": f"{entry.at}#{entry.entry_id}"}
        item = to_item(key | {name: value for name, value in data.items() if value is not None})
        return {"Put": {"TableName": self.table, "Item": item}}

    def record(self, entry: JournalEntry) -> None:
        with aws_errors():
            dynamodb_client().put_item(**self.entry_put(entry)["Put"])

    def record_lookup(self, entry: JournalEntry, day: dt.date, limit: int) -> bool:
        """Add the patient to the psychologist's set of the day and journal the look-up, in one transaction,
        unless the set already holds `limit` other patients: then nothing is written and the answer is False."""
        lookups = {
            "Update": {
                "TableName": self.table,
                "Key": to_item({"pk": f"LOOKUPS#{entry.psychologist_sub}", "sk": day.isoformat()}),
                "UpdateExpression": "ADD patients :patient SET #expires = :expires",
                "ConditionExpression": (
                    "attribute_not_exists(patients) OR size(patients) < :limit OR contains(patients, :key)"
                ),
                "ExpressionAttributeNames": {"#expires": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": {
                    ":patient": {"SS": [entry.patient_key]},
                    ":key": {"S": entry.patient_key},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str(_epoch(entry.at) + 2 * _DAY_SECONDS)},
                },
            }
        }
        items = [lookups, self.entry_put(entry)]
        try:
            transact_write(items)
        except ClientError as error:
            reasons = cancellations(error)
            if len(reasons) == len(items) and check_failed(reasons[0]):
                return False
            raise
        return True

    def entries(
        self, psychologist_sub: str, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A psychologist's entries, newest first, one page; and the sealed cursor of the next (or None)."""
        context = f"access-journal\n{psychologist_sub}"
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"JOURNAL#{psychologist_sub}"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        keys = self.cursor_keys()
        if cursor:
            position = cursors.open_sealed(cursor, context=context, keys=keys)
            arguments["ExclusiveStartKey"] = to_item({"pk": f"JOURNAL#{psychologist_sub}", "sk": position["after"]})
        with aws_errors():
            page = dynamodb_client().query(**arguments)
        last = page.get("LastEvaluatedKey")
        after = from_item(last)["sk"] if last else None
        lifetime = cursors.LIST_CURSOR_LIFETIME
        next_cursor = cursors.seal({"after": after}, context=context, keys=keys, lifetime=lifetime) if after else None
        return [from_item(item) for item in page.get("Items", [])], next_cursor


@cache
def access_journal_store() -> AccessJournalStore:
    return AccessJournalStore(
        settings().access_journal_table, settings().access_journal_retention_days, queue_cursor_keys
    )
