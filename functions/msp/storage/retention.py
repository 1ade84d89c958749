"""What the retention purge reads and erases in the application table; the documents' versions are erased by the
documents bucket (`DocumentBucket.erase_prefix`)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from msp.config import settings
from msp.storage.aws import aws_errors, condition_failed, dynamodb_client, pages, query_items, to_item
from msp.storage.candidatures import CandidatureStore, _candidature_from_item, _candidature_key, _identifier_key
from msp.storage.conventions import convention_key

if TYPE_CHECKING:
    from msp.candidatures.models import Candidature

ANONYMISED = "anonymised"


class RetentionStore(CandidatureStore):
    def purge_candidates(self, start: str | None) -> Iterator[tuple[Candidature, str | None]]:
        """A Scan (a scheduled job's, never a route's) of the unpurged candidature items in a purgeable status."""
        from msp.candidatures.retention import PURGEABLE_STATUSES

        statuses = {f":s{n}": status.value for n, status in enumerate(PURGEABLE_STATUSES)}
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": (
                f"sk = :candidature AND attribute_not_exists(purged_at) AND #status IN ({', '.join(statuses)})"
            ),
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_item({":candidature": "CANDIDATURE"} | statuses),
            "ConsistentRead": True,
        }
        if start:
            arguments["ExclusiveStartKey"] = _candidature_key(start)
        for page in pages(dynamodb_client().scan, arguments):
            for item in page["Items"]:
                candidature = _candidature_from_item(item)
                yield candidature, candidature.id

    def _audit_items(self, candidature_id: str, prefix: str) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"CANDIDATURE#{candidature_id}"}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        return list(query_items(arguments))

    def anonymise_history(self, candidature_id: str) -> int:
        from msp.candidatures.retention import RETENTION_ACTOR

        changed = 0
        for item in self._audit_items(candidature_id, "AUDIT#"):
            if item.get("actor", {}).get("S") in (ANONYMISED, RETENTION_ACTOR) and "reason" not in item:
                continue
            with aws_errors():
                dynamodb_client().update_item(
                    TableName=self.table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET actor = :anonymised REMOVE reason",
                    ExpressionAttributeValues={":anonymised": {"S": ANONYMISED}},
                )
            changed += 1
        return changed

    def erase_markers(self, candidature: Candidature) -> int:
        erased = 0
        with aws_errors():
            for item in self._audit_items(candidature.id, "NOTIFIED#"):
                dynamodb_client().delete_item(TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]})
                erased += 1
        naming = [convention_key(candidature.owner_sub)] if candidature.owner_sub else []
        identifier = candidature.fields.identifier
        if identifier is not None:
            naming.append(_identifier_key(identifier.type, identifier.value, record="PREVIOUS"))
        for key in naming:
            erased += self._delete_if_naming(key, candidature.id)
        return erased

    def _delete_if_naming(self, key: dict[str, Any], candidature_id: str) -> int:
        try:
            with aws_errors():
                dynamodb_client().delete_item(
                    TableName=self.table,
                    Key=key,
                    ConditionExpression="candidature_id = :id",
                    ExpressionAttributeValues={":id": {"S": candidature_id}},
                )
        except ClientError as error:
            if condition_failed(error):
                return 0  # gone already, or it names a later candidature
            raise
        return 1


@cache
def retention_store() -> RetentionStore:
    return RetentionStore(settings().app_table)
