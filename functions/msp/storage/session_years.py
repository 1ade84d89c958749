"""A whole year of SessionsTable for the tally: its rows page by page through the ByYear index, the repair of a
drifted counter, and the bulk import of sessions counted elsewhere (synthetic data, benchmarks)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from msp.config import settings
from msp.storage.aws import (
    aws_errors,
    bulk_dynamodb_client,
    busy,
    condition_failed,
    dynamodb_client,
    from_item,
    jitter,
    pages,
    to_item,
)
from msp.storage.sessions import (
    TALLY_INDEX,
    TALLY_SHARDS,
    counter_attributes,
    counter_key,
    session_item,
)

if TYPE_CHECKING:
    from msp.sessions.rules import SessionRecord
    from msp.tally.rules import Row


class SessionYearStore:
    def __init__(self, sessions_table: str):
        self.sessions_table = sessions_table

    def year_items(self, year: int) -> Iterator[dict[str, Any]]:
        """Every counter and session of a year, shard by shard, each patient's counter before their sessions."""
        for shard in range(TALLY_SHARDS):
            for page in pages(dynamodb_client().query, self._shard_query(year, shard)):
                yield from (from_item(item) for item in page.get("Items", []))

    def _shard_query(self, year: int, shard: int) -> dict[str, Any]:
        return {
            "TableName": self.sessions_table,
            "IndexName": TALLY_INDEX,
            "KeyConditionExpression": "year_shard = :shard",
            "ExpressionAttributeValues": {":shard": {"S": f"{year}#{shard:02d}"}},
        }

    # ------------------------------------------------------------ the yearly tally
    #
    # The tally reads a year shard by shard through ByYear, in index order: each patient's counter, then their
    # sessions. Only the attributes it counts are asked for; the keys come back in LastEvaluatedKey anyway.

    def year_pages(
        self, year: int, shard: int, start_key: dict[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[tuple[list[Row], dict[str, Any] | None]]:
        """The shard's rows page by page, each with the key to resume after it (None after the last page)."""
        arguments = self._shard_query(year, shard) | {
            "ProjectionExpression": _TALLY_PROJECTION,
            "ExpressionAttributeNames": {"#date": "date", "#kind": "kind", "#state": "state"},
        }
        if page_size:
            arguments["Limit"] = page_size
        if start_key:
            arguments["ExclusiveStartKey"] = start_key
        for page in pages(bulk_dynamodb_client().query, arguments):
            yield _tally_rows(page.get("Items", [])), page.get("LastEvaluatedKey")

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
        from msp.tally.rules import CHANGED_SINCE_READ, REPAIRED

        key = counter_key(patient_key, year)
        values: dict[str, Any] = {":counted": sessions, ":now": now, ":run": run_id}
        if seen is None:
            update = {
                "UpdateExpression": (
                    "SET #used = :counted, patient_key = :patient, key_id = :key_id, #year = :year, "
                    "year_shard = :shard, tally_sk = :tally, updated_at = :now, repaired_by = :run"
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeNames": {"#used": "used", "#year": "year"},
            }
            attributes = counter_attributes(patient_key, year)
            values |= {
                ":patient": attributes["patient_key"],
                ":key_id": attributes["key_id"],
                ":year": attributes["year"],
                ":shard": attributes["year_shard"],
                ":tally": attributes["tally_sk"],
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
            if not condition_failed(error):
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
        patient-year's counter is set to the number of its sessions given here, which carry their ordinals
        (1 to that number); sessions are (record, the psychologist's department). Returns the number of items
        written.
        """
        by_patient: dict[tuple[str, int], list[tuple[SessionRecord, str | None]]] = {}
        for record, department in sessions:
            by_patient.setdefault((record.patient_key, record.year), []).append((record, department))
        items: list[dict[str, Any]] = []
        for (patient, year), declared in by_patient.items():
            items.extend(session_item(record, department) for record, department in declared)
            latest = max(record.created_at for record, _ in declared)
            items.append(_counter_item(patient, year, len(declared), latest))
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
                jitter(attempt, base=0.05)
            else:
                raise busy()
            with lock:
                written += len(batch)
                if progress is not None:
                    progress(written, len(items))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(send, batches))
        return written


_TALLY_PROJECTION = (
    "tally_sk, psychologist_sub, department, #date, #kind, situation, price, amo, amc, #state, patient_advance, "
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
    from msp.tally.rules import CounterRow, SessionRow  # once a page, not once an item

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
        situation = item.get("situation")
        department = item.get("department")
        rows.append(
            SessionRow(
                patient_key=tally_sk[: tally_sk.index(_SESSION_MARK)],
                psychologist_sub=item["psychologist_sub"]["S"],
                department=department["S"] if department else "",
                date=item["date"]["S"],
                kind=item["kind"]["S"],
                situation=situation["S"] if situation else None,
                price=_cents(item["price"]["N"]),
                amo=_cents(item["amo"]["N"]),
                amc=_cents(item["amc"]["N"]),
                state=_cents(item["state"]["N"]),
                patient_advance=_cents(item["patient_advance"]["N"]),
                rule_valid_from=item["rule_valid_from"]["S"],
            )
        )
    return rows


def _counter_item(patient_key: str, year: int, used: int, updated_at: str) -> dict[str, Any]:
    """A counter as a declaration leaves it (see SessionStore._count)."""
    return counter_key(patient_key, year) | to_item(
        {"used": used, **counter_attributes(patient_key, year), "updated_at": updated_at}
    )


@cache
def session_year_store() -> SessionYearStore:
    return SessionYearStore(settings().sessions_table)
