"""`make bench`: declarations per second through the handler against bare PutItems on the same DynamoDB Local,
and the DynamoDB requests each declaration, replay and cancellation makes (counted by a botocore event hook).
Not part of `make test`.

It also times, on the same server and the same interleaved patients, the two ways a declaration can learn the
count it must answer with: read it first (consistent BatchGetItem, then the transaction conditioned on it, as
the handler does), or send the transaction with a guessed count (0) and, when the counter is already there,
send it again with the count the refusal returns (ReturnValuesOnConditionCheckFailure=ALL_OLD).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter

import pytest

from infra.gateway import build_event
from msp.clock import programme_today
from tests.conftest import nir_for, set_convention

DECLARATIONS = 300
PATIENTS = 60  # 5 sessions each, interleaved: most declarations find a counter already there
WARM_UP = 100
ROUND = 50
GOAL = 0.5


def _table_of(params: dict) -> str:
    if "TableName" in params:
        return params["TableName"]
    if "RequestItems" in params:
        return "+".join(sorted(params["RequestItems"]))
    tables = {next(iter(item.values()))["TableName"] for item in params.get("TransactItems", [])}
    return "+".join(sorted(tables))


class RequestCounter:
    """Every DynamoDB request sent by the given clients, by (operation, table)."""

    def __init__(self, *clients):
        self.made: Counter = Counter()
        self.active = False
        for client in {id(client): client for client in clients}.values():
            client.meta.events.register("before-parameter-build.dynamodb.*", self._count)

    def _count(self, params, model, **_):
        if self.active:
            self.made[(model.name, _table_of(params))] += 1


def _declaration_events(stack, sub: str, count: int, first_patient: int) -> list[dict]:
    (route,) = [r for r in stack.template.routes if r.route_key == "POST /v1/sessions"]
    today = programme_today()
    events = []
    for n in range(count):
        patient = first_patient + n % PATIENTS
        birth = dt.date(1960 + patient % 40, 1 + patient % 12, 1)
        body = {
            "patient": {
                "nir": nir_for(birth, place=f"{1 + patient % 95:02d}{patient % 1000:03d}"),
                "birth_date": birth.isoformat(),
            },
            "date": today.isoformat(),
            "situation": None,
        }
        headers = [("content-type", "application/json"), ("idempotency-key", str(uuid.uuid4()))]
        claims = {"sub": sub, "cognito:groups": ["psychologists"]}
        events.append(
            build_event(route, "POST", route.path, "", headers, json.dumps(body).encode(), {}, claims, "127.0.0.1")
        )
    return events


def _session_like_item(n: int) -> dict:
    """An item of the size and shape of a stored session, for the bare PutItem baseline."""
    key = f"k1:{uuid.uuid4().hex}{uuid.uuid4().hex}"
    return {
        "pk": {"S": f"SESSION#{uuid.uuid4()}"},
        "sk": {"S": "SESSION"},
        "patient_key": {"S": key},
        "key_id": {"S": "k1"},
        "psychologist_sub": {"S": "bench-psychologist"},
        "department": {"S": "75"},
        "date": {"S": "2026-11-20"},
        "year": {"N": "2026"},
        "quota": {"N": "12"},
        "kind": {"S": "follow_up"},
        "ordinal": {"N": "2"},
        "price": {"N": "50.00"},
        "amo": {"N": "30.00"},
        "amc": {"N": "20.00"},
        "state": {"N": "0.00"},
        "patient_advance": {"N": "50.00"},
        "rule_valid_from": {"S": "2024-06-15"},
        "created_at": {"S": "2026-11-20T10:00:00.000000Z"},
        "year_shard": {"S": f"2026#{n % 16:02d}"},
        "tally_sk": {"S": f"PATIENT#{key}#SESSION#{n}"},
    }


class Stopwatch:
    def __init__(self):
        self.seconds = 0.0
        self.count = 0

    def run(self, calls) -> list:
        started = time.perf_counter()
        results = [call() for call in calls]
        self.seconds += time.perf_counter() - started
        self.count += len(results)
        return results

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


def _bare_transaction(client, stack, sub: str):
    """The declaration's transaction alone, as the handler sends it for a new patient-year."""

    def send():
        client.transact_write_items(TransactItems=_transaction(stack, sub, f"k1:{uuid.uuid4().hex}", seen=0))

    return send


def _state_read(stack, sub: str, patient_key: str) -> dict:
    """The declaration's consistent read of convention, counter and session id (see SessionStore._state)."""
    sessions, app = stack.names.table("SessionsTable"), stack.names.table("AppTable")
    return {
        app: {"Keys": [{"pk": {"S": f"PSYCHOLOGIST#{sub}"}, "sk": {"S": "CONVENTION"}}], "ConsistentRead": True},
        sessions: {
            "Keys": [
                {"pk": {"S": f"PATIENT#{patient_key}"}, "sk": {"S": "YEAR#2026"}},
                {"pk": {"S": f"SESSION#{uuid.uuid4()}"}, "sk": {"S": "SESSION"}},
            ],
            "ConsistentRead": True,
        },
    }


def _bare_read(client, stack, sub: str):
    """The declaration's read alone."""

    def send():
        client.batch_get_item(RequestItems=_state_read(stack, sub, f"k1:{uuid.uuid4().hex}"))

    return send


def _journal_entry(sub: str, patient_key: str) -> dict:
    """An access journal entry of the size and shape the declaration writes (see AccessJournalStore.entry_put)."""
    return {
        "pk": {"S": f"JOURNAL#{sub}"},
        "sk": {"S": f"2026-11-20T10:00:00.000000Z#{uuid.uuid4().hex}"},
        "psychologist_sub": {"S": sub},
        "action": {"S": "declare"},
        "outcome": {"S": "accepted"},
        "at": {"S": "2026-11-20T10:00:00.000000Z"},
        "patient_key": {"S": patient_key},
        "session_id": {"S": str(uuid.uuid4())},
        "expires_at": {"N": "1795000000"},
    }


def _transaction(stack, sub: str, patient_key: str, seen: int) -> list[dict]:
    """The declaration's transaction for a patient whose counter reads `seen` (see SessionStore._count): the
    convention checked, the counter moved, the session and the access journal's entry put."""
    sessions, app = stack.names.table("SessionsTable"), stack.names.table("AppTable")
    journal = stack.names.table("AccessJournalTable")
    item = _session_like_item(0) | {"patient_key": {"S": patient_key}}
    condition = "#used = :seen AND #used < :quota"
    if seen == 0:
        condition = f"attribute_not_exists(#used) OR ({condition})"
    return [
        {
            "ConditionCheck": {
                "TableName": app,
                "Key": {"pk": {"S": f"PSYCHOLOGIST#{sub}"}, "sk": {"S": "CONVENTION"}},
                "ConditionExpression": "#status = :accepted AND department = :department",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":accepted": {"S": "accepted"}, ":department": {"S": "75"}},
            }
        },
        {
            "Update": {
                "TableName": sessions,
                "Key": {"pk": {"S": f"PATIENT#{patient_key}"}, "sk": {"S": "YEAR#2026"}},
                "UpdateExpression": "SET #used = :next",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#used": "used"},
                "ExpressionAttributeValues": {
                    ":next": {"N": str(seen + 1)},
                    ":seen": {"N": str(seen)},
                    ":quota": {"N": "12"},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {"Put": {"TableName": sessions, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"TableName": journal, "Item": _journal_entry(sub, patient_key)}},
    ]


def _read_then_write(client, stack, sub: str, patient_key: str):
    """What the handler sends: a consistent read of convention, counter and session id, then the transaction."""
    sessions = stack.names.table("SessionsTable")

    def send():
        read = client.batch_get_item(RequestItems=_state_read(stack, sub, patient_key))
        counters = read["Responses"].get(sessions, [])
        seen = int(counters[0]["used"]["N"]) if counters else 0
        client.transact_write_items(TransactItems=_transaction(stack, sub, patient_key, seen))

    return send


class Guesses:
    """The other way: the transaction with a guessed count, sent again with the count its refusal returns."""

    def __init__(self, client, stack, sub: str):
        self.client, self.stack, self.sub = client, stack, sub
        self.sent = self.refused = 0

    def declaration(self, patient_key: str):
        def send():
            seen = 0
            while True:
                self.sent += 1
                try:
                    self.client.transact_write_items(
                        TransactItems=_transaction(self.stack, self.sub, patient_key, seen)
                    )
                    return
                except self.client.exceptions.TransactionCanceledException as error:
                    self.refused += 1
                    counter = error.response["CancellationReasons"][1]
                    assert counter["Code"] == "ConditionalCheckFailed", error.response["CancellationReasons"]
                    seen = int(counter["Item"]["used"]["N"])

        return send


def _patient_keys(count: int) -> list[str]:
    """Patient keys in the benchmark's order: PATIENTS patients, 5 declarations each, interleaved."""
    patients = [f"k1:{uuid.uuid4().hex}{uuid.uuid4().hex}" for _ in range(PATIENTS)]
    return [patients[n % PATIENTS] for n in range(count)]


def _cancellation_events(stack, sub: str, session_ids: list[str]) -> list[dict]:
    (route,) = [r for r in stack.template.routes if r.route_key == "DELETE /v1/sessions/{session_id}"]
    claims = {"sub": sub, "cognito:groups": ["psychologists"]}
    return [
        build_event(
            route, "DELETE", f"/v1/sessions/{session_id}", "", [], b"", {"session_id": session_id}, claims, "127.0.0.1"
        )
        for session_id in session_ids
    ]


def _per_operation(made: Counter, count: int) -> list[str]:
    return [f"  {operation:20s} {tables:45s} {n / count:.2f}" for (operation, tables), n in sorted(made.items())]


@pytest.mark.integration
def test_declaration_throughput_and_requests_per_declaration(stack):
    from tests.storage_view import StorageView

    storage = StorageView()

    sub = f"bench-{uuid.uuid4().hex[:8]}"
    set_convention(sub, "accepted", "75")
    client = storage.dynamodb_client()
    table = stack.names.table("SessionsTable")
    idempotency_table = stack.names.table("IdempotencyTable")

    def invoke(function, event):
        return lambda: stack.runtime.invoke(function, event)

    def put(item):
        return lambda: client.put_item(TableName=table, Item=item)

    # Warm up every path alike (imports, secret, clients, DynamoDB Local's JIT), then alternate rounds,
    # so no side is measured on a colder server.
    for event in _declaration_events(stack, sub, WARM_UP, first_patient=10_000):
        assert invoke("DeclareSessionFunction", event)()["statusCode"] == 201
    guesses = Guesses(client, stack, sub)
    for n, patient_key in enumerate(_patient_keys(WARM_UP)):
        put(_session_like_item(n))()
        _bare_transaction(client, stack, sub)()
        _bare_read(client, stack, sub)()
        _read_then_write(client, stack, sub, patient_key)()
        guesses.declaration(patient_key)()

    counter = RequestCounter(client)
    handler, bare_put, bare_transaction, bare_read = Stopwatch(), Stopwatch(), Stopwatch(), Stopwatch()
    read_then_write, guessed = Stopwatch(), Stopwatch()
    guesses = Guesses(client, stack, sub)
    events = _declaration_events(stack, sub, DECLARATIONS, first_patient=20_000)
    keyed_read, keyed_guess = _patient_keys(DECLARATIONS), _patient_keys(DECLARATIONS)
    answers = []
    for start in range(0, DECLARATIONS, ROUND):
        counter.active = True
        answers += handler.run([invoke("DeclareSessionFunction", event) for event in events[start : start + ROUND]])
        counter.active = False
        bare_put.run([put(_session_like_item(n)) for n in range(start, start + ROUND)])
        bare_transaction.run([_bare_transaction(client, stack, sub)] * ROUND)
        bare_read.run([_bare_read(client, stack, sub)] * ROUND)
        read_then_write.run([_read_then_write(client, stack, sub, key) for key in keyed_read[start : start + ROUND]])
        guessed.run([guesses.declaration(key) for key in keyed_guess[start : start + ROUND]])
    assert [answer["statusCode"] for answer in answers] == [201] * DECLARATIONS, answers[0]
    declared = dict(counter.made)

    # Replays (same key, same body: the stored answer) and cancellations, requests counted the same way.
    counter.made.clear()
    counter.active = True
    replays = [stack.runtime.invoke("DeclareSessionFunction", event) for event in events[:ROUND]]
    counter.active = False
    assert [replay["body"] for replay in replays] == [answer["body"] for answer in answers[:ROUND]]
    replayed = dict(counter.made)
    session_ids = [json.loads(answer["body"])["session_id"] for answer in answers[:ROUND]]
    counter.made.clear()
    counter.active = True
    cancelled = [
        stack.runtime.invoke("CancelSessionFunction", e) for e in _cancellation_events(stack, sub, session_ids)
    ]
    counter.active = False
    assert [answer["statusCode"] for answer in cancelled] == [204] * ROUND, cancelled[0]
    cancelling = dict(counter.made)

    sessions_table, app_table = table, stack.names.table("AppTable")
    journal_table = stack.names.table("AccessJournalTable")
    both = "+".join(sorted({app_table, sessions_table}))
    written = "+".join(sorted({app_table, sessions_table, journal_table}))
    transactions = declared.get(("TransactWriteItems", written), 0)
    ratio = handler.per_second / bare_put.per_second
    first_of_year = PATIENTS / DECLARATIONS

    print("\n--- declarations through the handler vs bare PutItem, same DynamoDB Local, same run")
    print(f"declarations through the handler:  {handler.per_second:8.1f} /s  ({DECLARATIONS}, sequential)")
    print(f"bare PutItem (session-sized item): {bare_put.per_second:8.1f} /s  ({DECLARATIONS}, sequential)")
    print(f"ratio: {ratio:.2f}x  (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'})")
    print("for reference, on the same server (ratio to bare PutItem):")
    print(
        f"  the declaration's TransactWriteItems alone: {bare_transaction.per_second:8.1f} /s  "
        f"{bare_transaction.per_second / bare_put.per_second:.2f}x  (the same 4 items: the ceiling of any "
        "one-transaction declaration)"
    )
    print(
        f"declarations through the handler vs that bare TransactWriteItems: "
        f"{handler.per_second / bare_transaction.per_second:.2f}x"
    )
    print(
        f"  the declaration's BatchGetItem alone:       {bare_read.per_second:8.1f} /s  "
        f"{bare_read.per_second / bare_put.per_second:.2f}x"
    )
    print(
        f"  read, then the transaction (bare):         {read_then_write.per_second:8.1f} /s  "
        f"{read_then_write.per_second / bare_put.per_second:.2f}x  (what the handler sends)"
    )
    print(
        f"  guessed count 0, again after a refusal:     {guessed.per_second:8.1f} /s  "
        f"{guessed.per_second / bare_put.per_second:.2f}x  ({guesses.sent / DECLARATIONS:.2f} transactions, "
        f"{guesses.refused / DECLARATIONS:.2f} refused, per declaration; {first_of_year:.0%} first of the year)"
    )
    print("--- DynamoDB requests per declaration (botocore event hook)")
    print("\n".join(_per_operation(declared, DECLARATIONS)))
    print(f"  all:  {sum(declared.values()) / DECLARATIONS:.2f}")
    print("--- per replay (same key, same body)")
    print("\n".join(_per_operation(replayed, ROUND)))
    print(f"  all:  {sum(replayed.values()) / ROUND:.2f}")
    print("--- per cancellation")
    print("\n".join(_per_operation(cancelling, ROUND)))
    print(f"  all:  {sum(cancelling.values()) / ROUND:.2f}")

    assert not any(idempotency_table in tables for _, tables in declared), "a declaration used IdempotencyTable"
    assert transactions == DECLARATIONS, "a declaration must write in exactly one transaction"
    assert sum(declared.values()) == 2 * DECLARATIONS, "a declaration is one read and one transaction"
    assert replayed == {("BatchGetItem", both): ROUND, ("PutItem", journal_table): ROUND}, (
        "a replay is one read, and writes nothing but its journal entry"
    )
    assert sum(cancelling.values()) == 2 * ROUND, "a cancellation is one read and one transaction"
