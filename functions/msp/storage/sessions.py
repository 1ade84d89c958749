"""SessionsTable: declared sessions and the per-patient yearly counters they count against, checked against the
psychologists' conventions (application table). Layout and the reason for it: see SessionsTable in template.yaml.

Storage reads the state a declaration depends on and writes the decision taken on it (msp.sessions.decisions);
when a condition of that write fails, it reports what the state holds now, never what to do about it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from msp.config import settings
from msp.errors import NotFound
from msp.storage.access_journal import AccessJournalStore, access_journal_store
from msp.storage.aws import (
    batch_get,
    cancellations,
    check_failed,
    dynamodb_client,
    from_item,
    get_item,
    pages,
    to_item,
    transact_write,
)
from msp.storage.conventions import convention_check, convention_key

if TYPE_CHECKING:
    from msp.sessions.decisions import Declaration, DeclarationState
    from msp.sessions.journal import JournalEntry
    from msp.sessions.rules import SessionRecord

TALLY_INDEX = "ByYear"
STATEMENT_INDEX = "ByPsychologist"
TALLY_SHARDS = 16  # changing it means rewriting year_shard on every item
AMOUNT_FIELDS = ("price", "amo", "amc", "state", "patient_advance")


def counter_key(patient_key: str, year: int) -> dict[str, Any]:
    return {"pk": {"S": f"PATIENT#{patient_key}"}, "sk": {"S": f"YEAR#{year}"}}


def session_key(session_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "SESSION"}}


def year_shard(patient_key: str, year: int) -> str:
    """The ByYear partition of a patient's counter and sessions: the patient key's digest spreads patients."""
    digest = patient_key.rsplit(":", 1)[-1]
    return f"{year}#{int(digest[:8], 16) % TALLY_SHARDS:02d}"


def counter_attributes(patient_key: str, year: int) -> dict[str, Any]:
    """What a counter item holds besides `used` and `updated_at`: who and which year, and its ByYear keys."""
    return {
        "patient_key": patient_key,
        "key_id": patient_key.split(":", 1)[0],
        "year": year,
        "year_shard": year_shard(patient_key, year),
        "tally_sk": f"PATIENT#{patient_key}#COUNTER",
    }


def session_item(session: SessionRecord, department: str | None) -> dict[str, Any]:
    referral = session.referral
    item = session_key(session.session_id) | to_item(
        {
            "session_id": session.session_id,
            "patient_key": session.patient_key,
            "key_id": session.key_id,
            "psychologist_sub": session.psychologist_sub,
            "department": department,
            "date": session.date.isoformat(),
            "year": session.year,
            "situation": session.situation,
            "kind": session.kind,
            # The referral letter: its prescriber's RPPS number and date only.
            "referral_rpps": referral.prescriber_rpps if referral else None,
            "referral_date": referral.date.isoformat() if referral else None,
            "quota": session.quota,
            # The patient's count for the year with this session: the declaration's answer.
            "ordinal": session.ordinal,
            "request_digest": session.request_digest,  # tells a replay from another body under the same id
            "rule_valid_from": session.rule_valid_from.isoformat(),
            "created_at": session.created_at,
            "year_shard": year_shard(session.patient_key, session.year),
            "tally_sk": f"PATIENT#{session.patient_key}#SESSION#{session.session_id}",
            # ByPsychologist: the psychologist's statement, by date (kept when the session is cancelled).
            "statement_sk": f"{session.date.isoformat()}#{session.session_id}",
        }
    )
    # Euros as exact DynamoDB numbers, so the tally can add them up.
    for name in AMOUNT_FIELDS:
        item[name] = {"N": str(getattr(session.amounts, name))}
    return item


class SessionStore:
    def __init__(self, sessions_table: str, app_table: str, journal: AccessJournalStore):
        self.sessions_table = sessions_table
        self.app_table = app_table
        self.journal = journal

    def declaration_state(
        self, psychologist_sub: str, patient_key: str, year: int, session_id: str | None = None
    ) -> DeclarationState:
        """The psychologist's convention, the patient's count for the year and, when asked, the session with
        this id if it is already stored: one consistent BatchGetItem."""
        from msp.sessions.decisions import DeclarationState

        sessions_keys = [counter_key(patient_key, year)]
        if session_id is not None:
            sessions_keys.append(session_key(session_id))
        found = batch_get(
            {
                self.app_table: {"Keys": [convention_key(psychologist_sub)], "ConsistentRead": True},
                self.sessions_table: {"Keys": sessions_keys, "ConsistentRead": True},
            }
        )
        conventions = found.get(self.app_table, [])
        convention = from_item(conventions[0]) if conventions else None
        used, stored = 0, None
        for item in map(from_item, found.get(self.sessions_table, [])):
            if item["pk"].startswith("SESSION#"):
                stored = item
            else:
                used = int(item.get("used", 0))
        return DeclarationState(convention=convention, used=used, stored_session=stored)

    def _count(self, declaration: Declaration) -> dict[str, Any]:
        """The counter goes from `seen` to `seen + 1`, only if it still reads `seen` and is under the quota."""
        session, seen = declaration.session, declaration.seen
        condition = "#used = :seen AND #used < :quota"
        if seen == 0:
            condition = f"attribute_not_exists(#used) OR ({condition})"
        attributes = counter_attributes(session.patient_key, session.year)
        return {
            "Update": {
                "TableName": self.sessions_table,
                "Key": counter_key(session.patient_key, session.year),
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
                        ":patient": attributes["patient_key"],
                        ":key_id": attributes["key_id"],
                        ":year": attributes["year"],
                        ":shard": attributes["year_shard"],
                        ":tally": attributes["tally_sk"],
                        ":now": session.created_at,
                    }
                ),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def record_declaration(self, declaration: Declaration, state: DeclarationState) -> None:
        """One transaction: the convention still accepted in the department read, the counter moved from what
        was read to one more under the quota, the session put with the kind and price that count gave, the
        access journal's entry. Refused because another declaration, a
        cancellation or a decision moved any of them, it raises StateChanged with what the refusal showed
        (ALL_OLD), so the decision can be taken again without reading."""
        from msp.sessions.decisions import StateChanged

        items = [
            convention_check(declaration.session.psychologist_sub, declaration.department, whole_item=True),
            self._count(declaration),
            {
                "Put": {
                    "TableName": self.sessions_table,
                    "Item": session_item(declaration.session, declaration.department),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            self.journal.entry_put(declaration.journal),
        ]
        try:
            transact_write(items)
        except ClientError as error:
            reasons = cancellations(error)
            if len(reasons) != len(items) or not any(check_failed(reason) for reason in reasons):
                raise
            convention_reason, counter_reason, session_reason, _ = reasons
            now = state
            if check_failed(session_reason):
                now = replace(now, stored_session=from_item(session_reason.get("Item", {})))
            if check_failed(convention_reason):
                convention = from_item(convention_reason["Item"]) if "Item" in convention_reason else None
                now = replace(now, convention=convention)
            if check_failed(counter_reason):
                now = replace(now, used=int(from_item(counter_reason.get("Item", {})).get("used", 0)))
            raise StateChanged(now) from error

    def stored_session(self, session_id: str) -> dict[str, Any] | None:
        found = get_item(self.sessions_table, session_key(session_id))
        return from_item(found) if found else None

    def record_cancellation(self, journal: JournalEntry, year: int) -> None:
        """Cancel the session and count it back, atomically, while the psychologist's convention is accepted;
        the access journal's entry in the same transaction.

        The session item stays as the record of its declaration's Idempotency-Key (a replay answers what it
        answered, and does not declare it again), stripped of the patient key and of the ByYear keys: it no
        longer counts, the tally no longer sees it and it no longer links to the patient."""
        from msp.sessions.decisions import not_conventioned

        session_id, psychologist_sub, patient_key, now = (
            journal.session_id,
            journal.psychologist_sub,
            journal.patient_key,
            journal.at,
        )
        if session_id is None or patient_key is None:
            raise ValueError("a cancellation's journal entry names the session and the patient")
        items = [
            convention_check(psychologist_sub),
            {
                "Update": {
                    "TableName": self.sessions_table,
                    "Key": session_key(session_id),
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
                    "Key": counter_key(patient_key, year),
                    "UpdateExpression": "SET #used = #used - :one, updated_at = :now",
                    "ConditionExpression": "#used > :zero",
                    "ExpressionAttributeNames": {"#used": "used"},
                    "ExpressionAttributeValues": to_item({":one": 1, ":zero": 0, ":now": now}),
                }
            },
            self.journal.entry_put(journal),
        ]
        try:
            transact_write(items)
        except ClientError as error:
            failed = [check_failed(reason) for reason in cancellations(error)]
            if len(failed) != len(items):
                raise
            if failed[0]:
                raise not_conventioned() from error
            if failed[1]:
                raise NotFound("No session with this id.") from error  # cancelled meanwhile
            raise

    def sessions_of(
        self, psychologist_sub: str, first_day: str, last_day: str, after: str | None, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The psychologist's sessions dated first_day..last_day (ISO), by date, after the `statement_sk`
        `after`; at most `limit` (all when None), with the position to go on from when more are left."""
        arguments: dict[str, Any] = {
            "TableName": self.sessions_table,
            "IndexName": STATEMENT_INDEX,
            "KeyConditionExpression": "psychologist_sub = :sub AND statement_sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":sub": {"S": psychologist_sub},
                ":low": {"S": first_day},
                ":high": {"S": f"{last_day}#~"},
            },
        }
        if after:
            # An index's start key is the item's key and its index key: all derive from the position.
            start = session_key(after.split("#", 1)[1]) | {"psychologist_sub": {"S": psychologist_sub}}
            arguments["ExclusiveStartKey"] = start | {"statement_sk": {"S": after}}
        found: list[dict[str, Any]] = []
        for page in pages(dynamodb_client().query, arguments):
            found += [from_item(item) for item in page.get("Items", [])]
            if limit is not None and len(found) > limit:
                break
        if limit is not None and len(found) > limit:
            return found[:limit], found[limit - 1]["statement_sk"]
        return found, None


@cache
def session_store() -> SessionStore:
    return SessionStore(settings().sessions_table, settings().app_table, access_journal_store())
