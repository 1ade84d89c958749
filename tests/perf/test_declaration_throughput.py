"""`make bench`: declarations per second through the handler against bare PutItems on the same DynamoDB Local,
and the DynamoDB requests each declaration makes (counted by a botocore event hook). Not part of `make test`.
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
        for client in {id(client): client for client in clients}.values():  # idempotency may share storage's
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
            "first_session": False,
            "tiers_payant_reason": None,
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
        "price": {"N": "50.00"},
        "amo": {"N": "30.00"},
        "amc": {"N": "20.00"},
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
    sessions, app = stack.names.table("SessionsTable"), stack.names.table("AppTable")

    def send():
        item = _session_like_item(0)
        client.transact_write_items(
            TransactItems=[
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
                        "Key": {"pk": {"S": f"PATIENT#{item['patient_key']['S']}"}, "sk": {"S": "YEAR#2026"}},
                        "UpdateExpression": "SET #used = :next",
                        "ConditionExpression": "attribute_not_exists(#used) OR (#used = :seen AND #used < :quota)",
                        "ExpressionAttributeNames": {"#used": "used"},
                        "ExpressionAttributeValues": {":next": {"N": "1"}, ":seen": {"N": "0"}, ":quota": {"N": "12"}},
                    }
                },
                {"Put": {"TableName": sessions, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )

    return send


def _bare_read(client, stack, sub: str):
    """The declaration's read alone: convention, counter and session id, consistent."""
    sessions, app = stack.names.table("SessionsTable"), stack.names.table("AppTable")

    def send():
        client.batch_get_item(
            RequestItems={
                app: {
                    "Keys": [{"pk": {"S": f"PSYCHOLOGIST#{sub}"}, "sk": {"S": "CONVENTION"}}],
                    "ConsistentRead": True,
                },
                sessions: {
                    "Keys": [
                        {"pk": {"S": f"PATIENT#k1:{uuid.uuid4().hex}"}, "sk": {"S": "YEAR#2026"}},
                        {"pk": {"S": f"SESSION#{uuid.uuid4()}"}, "sk": {"S": "SESSION"}},
                    ],
                    "ConsistentRead": True,
                },
            }
        )

    return send


@pytest.mark.integration
def test_declaration_throughput_and_requests_per_declaration(stack):
    from msp import idempotency, storage

    sub = f"bench-{uuid.uuid4().hex[:8]}"
    set_convention(sub, "accepted", "75")
    client = storage.dynamodb_client()
    table = stack.names.table("SessionsTable")

    def declaration(event):
        return lambda: stack.runtime.invoke("DeclareSessionFunction", event)

    def put(item):
        return lambda: client.put_item(TableName=table, Item=item)

    # Warm up both paths alike (imports, secret, clients, DynamoDB Local's JIT), then alternate rounds,
    # so neither side is measured on a colder server.
    for event in _declaration_events(stack, sub, WARM_UP, first_patient=10_000):
        assert declaration(event)()["statusCode"] == 201
    for n in range(WARM_UP):
        put(_session_like_item(n))()
        _bare_transaction(client, stack, sub)()
        _bare_read(client, stack, sub)()

    counter = RequestCounter(client, idempotency._persistence().client)
    handler, bare_put, bare_transaction, bare_read = Stopwatch(), Stopwatch(), Stopwatch(), Stopwatch()
    events = _declaration_events(stack, sub, DECLARATIONS, first_patient=20_000)
    answers = []
    for start in range(0, DECLARATIONS, ROUND):
        counter.active = True
        answers += handler.run([declaration(event) for event in events[start : start + ROUND]])
        counter.active = False
        bare_put.run([put(_session_like_item(n)) for n in range(start, start + ROUND)])
        bare_transaction.run([_bare_transaction(client, stack, sub)] * ROUND)
        bare_read.run([_bare_read(client, stack, sub)] * ROUND)
    assert [answer["statusCode"] for answer in answers] == [201] * DECLARATIONS, answers[0]
    made = dict(counter.made)
    ratio = handler.per_second / bare_put.per_second

    sessions_table, app_table = table, stack.names.table("AppTable")
    idempotency_table = stack.names.table("IdempotencyTable")
    domain = {key: n for key, n in made.items() if idempotency_table not in key[1]}
    on_idempotency = {key: n for key, n in made.items() if idempotency_table in key[1]}
    transactions = made.get(("TransactWriteItems", "+".join(sorted({app_table, sessions_table}))), 0)

    print("\n--- declarations through the handler vs bare PutItem, same DynamoDB Local, same run")
    print(f"declarations through the handler:  {handler.per_second:8.1f} /s  ({DECLARATIONS}, sequential)")
    print(f"bare PutItem (session-sized item): {bare_put.per_second:8.1f} /s  ({DECLARATIONS}, sequential)")
    print(f"ratio: {ratio:.2f}x  (goal >= {GOAL}x: {'met' if ratio >= GOAL else 'NOT met'})")
    print("for reference, on the same server:")
    print(f"  the declaration's TransactWriteItems alone: {bare_transaction.per_second:8.1f} /s")
    print(f"  the declaration's BatchGetItem alone:       {bare_read.per_second:8.1f} /s")
    print("--- DynamoDB requests per declaration (botocore event hook)")
    for (operation, tables), n in sorted(domain.items()):
        print(f"  {operation:20s} {tables:45s} {n / DECLARATIONS:.2f}")
    for (operation, tables), n in sorted(on_idempotency.items()):
        print(f"  {operation:20s} {tables:45s} {n / DECLARATIONS:.2f}  (Powertools idempotency record)")
    print(f"writes of the declaration (TransactWriteItems): {transactions / DECLARATIONS:.2f}")
    print(f"declaration requests (sessions + app tables):   {sum(domain.values()) / DECLARATIONS:.2f}")
    print(f"all DynamoDB requests, idempotency included:    {sum(made.values()) / DECLARATIONS:.2f}")

    assert transactions == DECLARATIONS, "a declaration must write in exactly one transaction"
    assert sum(domain.values()) == 2 * DECLARATIONS, "a declaration is one read and one transaction"
