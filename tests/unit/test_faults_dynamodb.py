"""DynamoDB faults through the handlers, on moto: throttling and transaction conflicts are retried (by botocore's
standard mode, or by our jittered loop for cancelled transactions), then answered 503 with Retry-After in the API
error shape, and never leave a partial write. Every test compares everything stored before and after."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import nir_for
from tests.unit.aws_faults import (
    PATIENT_KEY_DOCUMENT,
    TABLES,
    Answer,
    World,
    conventioned,
    declaration_body,
    dynamodb_error,
    moto_world,
    new_fields,
    psychologist,
    reviewer,
    stored_candidature,
    transaction_cancelled,
)

BOTOCORE_ATTEMPTS = 3  # storage._SERVICE_CONFIG: standard retry mode, 3 attempts in all
TRANSACTION_ATTEMPTS = 8  # storage.aws.TRANSACTION_ATTEMPTS


@pytest.fixture
def world(moto_env, monkeypatch):
    with moto_world(monkeypatch) as opened:
        yield opened


# ---------------------------------------------------------------- the operations under fault


@dataclass
class Operation:
    """A write route: what it needs stored first, the request, and the items a success writes."""

    name: str
    read: str | None  # the DynamoDB operation that reads first, if any
    prepare: Callable[[World], dict[str, Any]]
    send: Callable[[World, dict[str, Any]], Answer]
    succeeded: int
    written: Callable[[dict[str, Any]], dict[str, set[str]]]  # table -> "pk sk" of the items a success writes


def _prepare_create(world: World) -> dict[str, Any]:
    return {"sub": "psy-create", "fields": new_fields(), "key": "create-0000-0001"}


def _send_create(world: World, state: dict[str, Any]) -> Answer:
    answer = world.call(
        "POST",
        "/v1/candidatures",
        psychologist(state["sub"]),
        state["fields"],
        {"Idempotency-Key": state["key"]},
    )
    if answer.status == 201:
        state["id"] = answer.body["id"]
    return answer


def _created(state: dict[str, Any]) -> dict[str, set[str]]:
    identifier = state["fields"]["identifier"]["value"]
    return {
        TABLES["AppTable"]: {
            f"CANDIDATURE#{state['id']} CANDIDATURE",
            f"CANDIDATURE#{state['id']} AUDIT#00000001",
            f"IDENTIFIER#rpps#{identifier} LOCK",
        },
        TABLES["IdempotencyTable"]: {"*"},  # one record, whose key is a hash
    }


def _prepare_draft(world: World) -> dict[str, Any]:
    return {"sub": "psy-patch", "id": stored_candidature("draft", "psy-patch").id}


def _send_patch(world: World, state: dict[str, Any]) -> Answer:
    return world.call(
        "PATCH",
        f"/v1/candidatures/{state['id']}",
        psychologist(state["sub"]),
        {"experience_years": 21},
        {"If-Match": "1"},
    )


def _patched(state: dict[str, Any]) -> dict[str, set[str]]:
    return {TABLES["AppTable"]: {f"CANDIDATURE#{state['id']} CANDIDATURE"}}


def _send_submit(world: World, state: dict[str, Any]) -> Answer:
    return world.call("POST", f"/v1/candidatures/{state['id']}/submit", psychologist(state["sub"]))


def _submitted(state: dict[str, Any]) -> dict[str, set[str]]:
    return {TABLES["AppTable"]: {f"CANDIDATURE#{state['id']} CANDIDATURE", f"CANDIDATURE#{state['id']} AUDIT#00000002"}}


def _prepare_in_review(world: World) -> dict[str, Any]:
    return {"sub": "psy-accept", "id": stored_candidature("in_review", "psy-accept").id}


def _send_accept(world: World, state: dict[str, Any]) -> Answer:
    body = {"action": "accept", "expected_version": 1}
    return world.call("POST", f"/v1/candidatures/{state['id']}/transitions", reviewer("75"), body)


def _accepted(state: dict[str, Any]) -> dict[str, set[str]]:
    return {
        TABLES["AppTable"]: {
            f"CANDIDATURE#{state['id']} CANDIDATURE",
            f"CANDIDATURE#{state['id']} AUDIT#00000002",
            f"PSYCHOLOGIST#{state['sub']} CONVENTION",
        },
        # The one practice (keyed by its H3 cells), the public profile and the density counter of its region.
        TABLES["DirectoryTable"]: {"*practice", f"PSYCHOLOGIST#{state['id']} PROFILE", "*density"},
    }


TODAY = dt.date.today()
BIRTH = dt.date(1990, 5, 14)


def _prepare_declaration(world: World) -> dict[str, Any]:
    conventioned("psy-declare")
    return {"sub": "psy-declare", "nir": nir_for(BIRTH), "key": "declare-0000-0001"}


def _send_declaration(world: World, state: dict[str, Any]) -> Answer:
    from msp.clock import programme_today

    body = declaration_body(state["nir"], BIRTH, programme_today())
    return world.call("POST", "/v1/sessions", psychologist(state["sub"]), body, {"Idempotency-Key": state["key"]})


def _declared(state: dict[str, Any]) -> dict[str, set[str]]:
    from msp.clock import programme_today
    from msp.sessions.rules import PatientKeyring, session_id_for

    year = programme_today().year
    patient = PatientKeyring.from_secret(PATIENT_KEY_DOCUMENT).patient_key(state["nir"], year)
    session_id = session_id_for(state["sub"], state["key"])
    return {
        # The session item is the declaration's idempotency record: nothing in IdempotencyTable.
        TABLES["SessionsTable"]: {f"PATIENT#{patient} YEAR#{year}", f"SESSION#{session_id} SESSION"},
        # The access journal's entry, written in the declaration's own transaction.
        TABLES["AccessJournalTable"]: {"*entry"},
    }


CREATE = Operation("create", None, _prepare_create, _send_create, 201, _created)
PATCH = Operation("patch", "GetItem", _prepare_draft, _send_patch, 200, _patched)
SUBMIT = Operation(
    "submit",
    "GetItem",
    lambda world: {"sub": "psy-submit", "id": stored_candidature("draft", "psy-submit").id},
    _send_submit,
    200,
    _submitted,
)
ACCEPT = Operation("transition", "GetItem", _prepare_in_review, _send_accept, 200, _accepted)
DECLARE = Operation("declare", "BatchGetItem", _prepare_declaration, _send_declaration, 201, _declared)
WRITES = [CREATE, PATCH, SUBMIT, ACCEPT, DECLARE]
ids = [operation.name for operation in WRITES]


# ---------------------------------------------------------------- what is checked


def _keyed(table: str, items: list[dict[str, Any]]) -> dict[str, str]:
    keyed = {}
    for item in items:
        key = f"{item['pk']['S']} {item['sk']['S']}" if "sk" in item else item["id"]["S"]
        keyed[key] = json.dumps(item, sort_keys=True)
    return keyed


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, set[str]]:
    """The keys of the items created, changed or deleted, per table ("pk sk"); objects of the bucket too."""
    changed = {}
    for table in TABLES.values():
        old, new = _keyed(table, before[table]), _keyed(table, after[table])
        keys = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
        if keys:
            changed[table] = keys
    return changed


def assert_exactly_written(expected: dict[str, set[str]], before: dict[str, Any], after: dict[str, Any]) -> None:
    found = changes(before, after)
    assert found.keys() == expected.keys(), found
    for table, keys in expected.items():
        # "*name" stands for one item whatever its key; the other keys must match exactly.
        exact = {key for key in keys if not key.startswith("*")}
        assert exact <= found[table], found[table]
        assert len(found[table] - exact) == len(keys - exact), found[table]


def assert_busy_answer(answer: Answer) -> None:
    """503 in the API's error shape, telling the client when to retry."""
    assert answer.status == 503, answer.body
    assert answer.body == {
        "error": {"code": "service_unavailable", "message": "The service is busy; retry in a moment.", "details": []}
    }
    assert answer.headers["retry-after"] == "2"
    assert answer.headers["content-type"] == "application/json"


# ---------------------------------------------------------------- throttling


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
@pytest.mark.parametrize("operation", WRITES, ids=ids)
def test_a_throttled_write_is_retried_by_botocore_then_503_and_nothing_is_written(world, operation, code):
    state = operation.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("TransactWriteItems", dynamodb_error(code, "Rate of requests exceeds the allowed throughput."))

    assert_busy_answer(operation.send(world, state))

    assert world.faults.attempts["TransactWriteItems"] == BOTOCORE_ATTEMPTS
    backoffs = world.pauses.of("botocore.endpoint")  # jittered, up to 1 s then 2 s: inside the 10 s timeout
    assert len(backoffs) == BOTOCORE_ATTEMPTS - 1
    assert all(0 <= pause <= 2**attempt for attempt, pause in enumerate(backoffs)) and sum(backoffs) <= 3
    assert world.snapshot() == before, "a throttled write left something behind (idempotency record included)"

    # Once DynamoDB has capacity again, the client's retry (same Idempotency-Key, same If-Match) goes through once.
    world.faults.clear()
    assert operation.send(world, state).status == operation.succeeded
    assert_exactly_written(operation.written(state), before, world.snapshot())


@pytest.mark.parametrize("operation", [o for o in WRITES if o.read], ids=[o.name for o in WRITES if o.read])
def test_a_throttled_read_is_503_before_anything_is_written(world, operation):
    state = operation.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail(operation.read, dynamodb_error("ProvisionedThroughputExceededException"))

    assert_busy_answer(operation.send(world, state))

    assert world.faults.attempts[operation.read] == BOTOCORE_ATTEMPTS
    assert world.faults.attempts["TransactWriteItems"] == 0
    assert world.snapshot() == before


@pytest.mark.parametrize("operation", WRITES, ids=ids)
def test_throttling_that_clears_within_botocores_retries_is_not_seen_and_writes_once(world, operation):
    state = operation.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("TransactWriteItems", dynamodb_error("ThrottlingException"), times=2)

    assert operation.send(world, state).status == operation.succeeded

    assert world.faults.attempts["TransactWriteItems"] == 3
    assert_exactly_written(operation.written(state), before, world.snapshot())


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded"])
@pytest.mark.parametrize("operation", WRITES, ids=ids)
def test_a_transaction_cancelled_by_throttling_is_retried_then_503_and_nothing_is_written(world, operation, reason):
    """DynamoDB reports throttling inside TransactWriteItems as a cancellation reason, which botocore does not
    retry: our transaction loop does, with jitter, then answers 503 (not a 500)."""
    state = operation.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("TransactWriteItems", transaction_cancelled(reason))

    assert_busy_answer(operation.send(world, state))

    assert world.faults.attempts["TransactWriteItems"] == TRANSACTION_ATTEMPTS
    assert len(world.pauses.of("msp.storage.aws")) == TRANSACTION_ATTEMPTS - 1
    assert world.snapshot() == before

    world.faults.clear()
    world.faults.fail("TransactWriteItems", transaction_cancelled(reason), times=2)
    assert operation.send(world, state).status == operation.succeeded
    assert_exactly_written(operation.written(state), before, world.snapshot())


# ---------------------------------------------------------------- transaction conflicts


CONFLICTED = [ACCEPT, DECLARE, PATCH]


@pytest.mark.parametrize("operation", CONFLICTED, ids=[o.name for o in CONFLICTED])
def test_endless_transaction_conflicts_back_off_then_503_and_leave_the_state_unchanged(world, operation):
    state = operation.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("TransactWriteItems", transaction_cancelled("TransactionConflict"))

    assert_busy_answer(operation.send(world, state))

    assert world.faults.attempts["TransactWriteItems"] == TRANSACTION_ATTEMPTS
    pauses = world.pauses.of("msp.storage.aws")
    assert len(pauses) == TRANSACTION_ATTEMPTS - 1
    assert all(0 <= pause <= 0.02 * 2**attempt for attempt, pause in enumerate(pauses)), pauses
    assert world.snapshot() == before
    assert world.faults.attempts["PutEvents"] == 0, "a decision that was not written was announced"


@pytest.mark.parametrize("operation", CONFLICTED, ids=[o.name for o in CONFLICTED])
def test_conflicts_that_clear_are_retried_and_write_once(world, operation):
    state = operation.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("TransactWriteItems", transaction_cancelled("TransactionConflict"), times=3)

    assert operation.send(world, state).status == operation.succeeded

    assert world.faults.attempts["TransactWriteItems"] == 4
    assert_exactly_written(operation.written(state), before, world.snapshot())
    if operation is ACCEPT:
        history = world.call("GET", f"/v1/candidatures/{state['id']}/history", reviewer("75")).body["events"]
        assert [(event["version"], event["action"]) for event in history] == [(1, "create"), (2, "accept")]
    if operation is DECLARE:
        (counter,) = [i for i in world.snapshot()[TABLES["SessionsTable"]] if i["pk"]["S"].startswith("PATIENT#")]
        assert counter["used"] == {"N": "1"}


# ---------------------------------------------------------------- the idempotency layer's own table


def test_a_throttled_idempotency_table_is_503_and_nothing_is_created(world):
    state = CREATE.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("PutItem", dynamodb_error("ProvisionedThroughputExceededException"))

    assert_busy_answer(CREATE.send(world, state))

    assert world.faults.attempts["PutItem"] == BOTOCORE_ATTEMPTS, "the idempotency layer retries like storage does"
    assert world.faults.attempts["TransactWriteItems"] == 0
    assert world.snapshot() == before


def test_a_declaration_retried_after_a_503_counts_once(world):
    """A 503 wrote nothing, so the retry runs, and runs once, whatever happens next."""
    state = DECLARE.prepare(world)
    before = world.snapshot()
    world.faults.clear()  # count the attempts of the request only
    world.faults.fail("TransactWriteItems", transaction_cancelled("TransactionConflict"))
    assert DECLARE.send(world, state).status == 503
    world.faults.clear()
    first = DECLARE.send(world, state)
    replay = DECLARE.send(world, state)
    assert first.status == replay.status == 201
    assert first.body == replay.body and first.body["used"] == 1
    written = DECLARE.written(state)
    written[TABLES["AccessJournalTable"]].add("*replayed")  # the replay is journaled too, beside the declaration
    assert_exactly_written(written, before, world.snapshot())
