"""Candidatures, their identifier locks and their audit trail, in the application table.

A save is one transaction: the candidature under a version condition, the identifier lock when the held
identifier changes, the audit event, and whatever the decision's effects name (the convention item, the
directory listing): storage writes them as decided and reports which condition failed, as a domain error.
"""

from __future__ import annotations

from contextlib import suppress
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from msp.config import settings
from msp.errors import (
    AlreadyConventioned,
    CandidatureExists,
    ConventionMismatch,
    IdentifierTaken,
    NotFound,
    VersionMismatch,
)
from msp.storage.aws import (
    aws_errors,
    batch_get,
    cancellation_reasons,
    condition_failed,
    dynamodb_client,
    from_item,
    get_item,
    query_items,
    to_item,
    transact_write,
    without_keys,
)
from msp.storage.conventions import read_convention

# Only the stores that need them import the candidature models (a handler pays at cold start for what it imports).
if TYPE_CHECKING:
    from msp.candidatures.convention import DecisionEffects
    from msp.candidatures.models import AuditEvent, Candidature, Document


def _candidature_key(candidature_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": "CANDIDATURE"}}


OWNER_INDEX = "ByOwner"
ENDING_INDEX = "ConventionEnds"


def _identifier_key(identifier_type: str, value: str, record: str = "LOCK") -> dict[str, Any]:
    """The identifier's lock (`LOCK`: the candidature holding it) or its last holder (`PREVIOUS`)."""
    return {"pk": {"S": f"IDENTIFIER#{identifier_type}#{value}"}, "sk": {"S": record}}


def _held_identifier(candidature: Candidature | None) -> tuple[str, str] | None:
    if candidature is None or not candidature.holds_identifier:
        return None
    identifier = candidature.fields.identifier
    return None if identifier is None else (identifier.type, identifier.value)


def _queue_keys(candidature: Candidature) -> dict[str, str]:
    """Keys of the sparse review-queue indexes; none for drafts and withdrawn candidatures."""
    from msp.candidatures.models import QUEUE_STATUSES

    if candidature.status not in QUEUE_STATUSES or not candidature.department or not candidature.submitted_at:
        return {}
    return {
        "review_pk": f"{candidature.status.value}#{candidature.department}",
        "review_status": candidature.status.value,
        "review_sk": f"{candidature.submitted_at}#{candidature.id}",
    }


def _ending_keys(candidature: Candidature) -> dict[str, str]:
    """Keys of the sparse ConventionEnds index: an accepted candidature whose convention has an end date."""
    from msp.candidatures.models import Status

    if candidature.status is not Status.ACCEPTED or candidature.convention_end is None:
        return {}
    end = candidature.convention_end.isoformat()
    return {"ending_year": end[:4], "ending_on": f"{end}#{candidature.id}"}


def _candidature_item(candidature: Candidature) -> dict[str, Any]:
    data = candidature.model_dump(mode="json", exclude={"documents"})
    data["documents"] = {d.document_id: d.model_dump(mode="json") for d in candidature.documents}
    data["department"] = candidature.department
    data |= _queue_keys(candidature) | _ending_keys(candidature)
    if candidature.purged_at:
        # The anonymised skeleton belongs to nobody: it leaves the ByOwner index.
        del data["owner_sub"]
    return _candidature_key(candidature.id) | to_item(data)


def _candidature_from_item(item: dict[str, Any]) -> Candidature:
    from msp.candidatures.models import Candidature

    data = from_item(item)
    data.setdefault("owner_sub", "")
    documents = sorted(data.pop("documents", {}).values(), key=lambda d: (d["requested_at"], d["document_id"]))
    return Candidature.model_validate({**data, "documents": documents})


def _audit_key(candidature_id: str, version: int) -> dict[str, Any]:
    return {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": f"AUDIT#{version:08d}"}}


def _audit_put(event: AuditEvent) -> dict[str, Any]:
    item = _audit_key(event.candidature_id, event.version) | to_item(event.model_dump(mode="json"))
    return {"Put": {"TableName": settings().app_table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def _effect_writes(effects: DecisionEffects | None) -> list[dict[str, Any]]:
    """A decision's convention item and listing changes, as the domain planned them (convention first)."""
    if effects is None:
        return []
    writes = []
    if effects.convention is not None:
        from msp.storage.conventions import convention_write

        writes.append(convention_write(effects.convention))
    if effects.listing is not None:
        from msp.storage.directory import listing_writes

        writes += listing_writes(effects.listing)
    return writes


def _version_refused(previous: Candidature | None) -> CandidatureExists | VersionMismatch:
    if previous is None:
        return CandidatureExists("This candidature already exists.")
    return VersionMismatch("The candidature changed since you read it: read it again, then retry.")


def _convention_refused(effects: DecisionEffects | None) -> AlreadyConventioned | ConventionMismatch:
    if effects is not None and effects.convention is not None and effects.convention.status == "accepted":
        return AlreadyConventioned("This psychologist already holds a convention from another candidature.")
    return ConventionMismatch("The psychologist's convention is not held by this candidature.")


class CandidatureStore:
    """Candidatures, their identifier locks and their audit trail."""

    def __init__(self, table: str):
        self.table = table

    def get(self, candidature_id: str) -> Candidature:
        item = get_item(self.table, _candidature_key(candidature_id))
        if item is None:
            raise NotFound("No candidature with this id.")
        return _candidature_from_item(item)

    def save(
        self,
        candidature: Candidature,
        *,
        previous: Candidature | None,
        audit: AuditEvent | None,
        effects: DecisionEffects | None = None,
    ) -> None:
        """Write a new version in one transaction: the item under a version condition, the identifier lock
        moves when the held identifier changes, the audit event is appended, and a decision's effects
        (convention, listing) are written as planned."""
        items = [self._versioned_put(candidature, previous)]
        before, after = _held_identifier(previous), _held_identifier(candidature)
        if before != after:
            items += self._identifier_moves(candidature, before, after)
        if audit is not None:
            items.append(_audit_put(audit))
        convention_at = len(items)
        items += _effect_writes(effects)
        try:
            transact_write(items)
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise _version_refused(previous) from error
            if len(reasons) > convention_at and reasons[convention_at] == "ConditionalCheckFailed":
                raise _convention_refused(effects) from error
            if after and "ConditionalCheckFailed" in reasons:
                raise self._identifier_taken(*after) from error
            raise

    def _versioned_put(self, candidature: Candidature, previous: Candidature | None) -> dict[str, Any]:
        """The candidature's item, new or at the version it was read at."""
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(previous.version)}},
            }
        return {"Put": {"TableName": self.table, "Item": _candidature_item(candidature), **condition}}

    def _identifier_moves(
        self, candidature: Candidature, before: tuple[str, str] | None, after: tuple[str, str] | None
    ) -> list[dict[str, Any]]:
        """Release the identifier this candidature held, take the one it holds now (unless another has it).

        A submitted candidature that ends (rejected, withdrawn, deconventioned) stays the identifier's last
        holder, so the next candidature with it links this one."""
        candidature_id = candidature.id
        moves: list[dict[str, Any]] = []
        if before and after is None and candidature.submitted_at and not candidature.purged_at:
            item = _identifier_key(*before, record="PREVIOUS") | {"candidature_id": {"S": candidature_id}}
            moves.append({"Put": {"TableName": self.table, "Item": item}})
        if before:
            moves.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": _identifier_key(*before),
                        "ConditionExpression": "candidature_id = :id",
                        "ExpressionAttributeValues": {":id": {"S": candidature_id}},
                    }
                }
            )
        if after:
            moves.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _identifier_key(*after) | {"candidature_id": {"S": candidature_id}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        return moves

    def history(self, candidature_id: str) -> list[AuditEvent]:
        """The audit trail, oldest first (sort keys are zero-padded versions)."""
        from msp.candidatures.models import AuditEvent

        arguments: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :audit)",
            "ExpressionAttributeValues": {":pk": {"S": f"CANDIDATURE#{candidature_id}"}, ":audit": {"S": "AUDIT#"}},
            "ConsistentRead": True,
            "ScanIndexForward": True,
        }
        return [AuditEvent.model_validate(without_keys(from_item(item))) for item in query_items(arguments)]

    def record_download(self, event: AuditEvent, document_id: str) -> None:
        # AUDIT#<version>#DOWNLOAD#<time>#<document id>: history() lists it after the event of its version, and
        # audit_event(), which reads AUDIT#<version> exactly, never sees it.
        key = _audit_key(event.candidature_id, event.version)
        key["sk"] = {"S": f"{key['sk']['S']}#DOWNLOAD#{event.at}#{document_id}"}
        with aws_errors():
            dynamodb_client().put_item(TableName=self.table, Item=key | to_item(event.model_dump(mode="json")))

    def audit_event(self, candidature_id: str, version: int) -> AuditEvent | None:
        from msp.candidatures.models import AuditEvent

        item = get_item(self.table, _audit_key(candidature_id, version))
        return AuditEvent.model_validate(without_keys(from_item(item))) if item else None

    def convention(self, owner_sub: str) -> dict[str, Any] | None:
        return read_convention(owner_sub)

    def owned_by(self, owner_sub: str) -> list[Candidature]:
        """Every candidature of this psychologist, newest first: the ByOwner index, then the items."""
        arguments: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "owner_sub = :owner",
            "ExpressionAttributeValues": {":owner": {"S": owner_sub}},
            "ScanIndexForward": False,
        }
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in query_items(arguments)]
        found: list[Candidature] = []
        for start in range(0, len(keys), 100):
            items = batch_get({self.table: {"Keys": keys[start : start + 100], "ConsistentRead": True}})
            found += [_candidature_from_item(item) for item in items.get(self.table, [])]
        # The index is eventually consistent: an item that changed hands since is left out.
        mine = [candidature for candidature in found if candidature.owner_sub == owner_sub]
        return sorted(mine, key=lambda c: (c.created_at, c.id), reverse=True)

    def previous_holder(self, identifier_type: str, value: str) -> str | None:
        """The last submitted candidature that held this identifier and let it go, if any."""
        item = get_item(self.table, _identifier_key(identifier_type, value, record="PREVIOUS"))
        return item["candidature_id"]["S"] if item else None

    def ending_by(self, day: str) -> list[str]:
        """Ids of accepted candidatures whose convention ends on `day` (ISO) or earlier, this year or last."""
        ids: list[str] = []
        for year in (int(day[:4]) - 1, int(day[:4])):
            arguments: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": ENDING_INDEX,
                "KeyConditionExpression": "ending_year = :year AND ending_on <= :last",
                "ExpressionAttributeValues": {":year": {"S": str(year)}, ":last": {"S": f"{day}#~"}},
            }
            ids += [item["ending_on"]["S"].split("#", 1)[1] for item in query_items(arguments)]
        return ids

    def claim_notification(self, candidature_id: str, version: int) -> bool:
        """Mark the decision of `version` as being notified; False when it already was (redelivery)."""
        key = {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": f"NOTIFIED#{version:08d}"}}
        try:
            with aws_errors():
                dynamodb_client().put_item(
                    TableName=self.table, Item=key, ConditionExpression="attribute_not_exists(pk)"
                )
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def release_notification(self, candidature_id: str, version: int) -> None:
        """Undo a claim after a failed send, so the retried event sends the message."""
        key = {"pk": {"S": f"CANDIDATURE#{candidature_id}"}, "sk": {"S": f"NOTIFIED#{version:08d}"}}
        with aws_errors():
            dynamodb_client().delete_item(TableName=self.table, Key=key)

    def _identifier_taken(self, identifier_type: str, value: str) -> IdentifierTaken:
        lock = get_item(self.table, _identifier_key(identifier_type, value))
        status = "unknown"
        if lock:
            with suppress(NotFound):
                status = self.get(lock["candidature_id"]["S"]).status.value
        return IdentifierTaken(
            f"An active candidature already uses this {identifier_type.upper()} number (status: {status}).",
            details=[{"field": "identifier", "existing_status": status}],
        )

    def record_document_verdict(self, candidature_id: str, document: Document) -> bool:
        """Store the check's verdict once; False when it was already recorded (S3 redelivers)."""
        from msp.candidatures.models import DocumentStatus

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
            if condition_failed(error):
                return False
            raise
        return True


# ---------------------------------------------------------------- documents bucket


@cache
def candidature_store() -> CandidatureStore:
    return CandidatureStore(settings().app_table)
