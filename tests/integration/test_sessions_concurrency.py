"""The annual quota holds exactly under concurrent declarations, on DynamoDB Local.

Declarations race for real in the first test: 40 threads run the declaration (Idempotency-Key included)
against DynamoDB Local together. The local runtime runs handler invocations one at a time (see
infra.lambda_runtime: Powertools' resolver keeps the current event process-wide), so the gateway test
checks the same answers for 40 concurrent HTTP clients, whose declarations reach DynamoDB in turn.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests

from tests.unit.use_case_fakes import RecordedMetrics

pytestmark = pytest.mark.integration

PSYCHOLOGISTS = 4
DECLARATIONS_EACH = 10
QUOTA_2023 = 8  # 2023 sessions follow the 2022-04-05 rule
DAY_2023 = "2023-03-01"
REFERRAL = {"prescriber_rpps": "10000000009", "date": "2023-02-01"}  # 2023 sessions need one


@pytest.fixture(autouse=True)
def in_march_2023(on_day):
    """2023 is open for declarations (its closing date is 2024-03-31): the stack runs on 2023-03-02."""
    import datetime as dt

    on_day(dt.date(2023, 3, 2))


def body_2023(patient: dict) -> dict:
    return {"patient": patient, "date": DAY_2023, "situation": None, "referral": REFERRAL}


def _send_together(api, requests_to_send: list[tuple[str, dict, str]]) -> list[requests.Response]:
    """Every request on its own thread and connection, released at once by a barrier."""
    barrier = threading.Barrier(len(requests_to_send))

    def send(request: tuple[str, dict, str]) -> requests.Response:
        token, payload, key = request
        with requests.Session() as session:
            barrier.wait(timeout=30)
            return session.post(
                f"{api.base_url}/v1/sessions",
                json=payload,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                timeout=60,
            )

    with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
        return list(pool.map(send, requests_to_send))


def _session_items(stack, patient_key: str) -> list[dict]:
    client = boto3.client("dynamodb", region_name="eu-west-3")
    items, arguments = (
        [],
        {
            "TableName": stack.names.table("SessionsTable"),
            "FilterExpression": "patient_key = :patient AND begins_with(pk, :session)",
            "ExpressionAttributeValues": {":patient": {"S": patient_key}, ":session": {"S": "SESSION#"}},
            "ConsistentRead": True,
        },
    )
    while True:
        page = client.scan(**arguments)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _counter(stack, patient_key: str, year: int) -> int:
    client = boto3.client("dynamodb", region_name="eu-west-3")
    item = client.get_item(
        TableName=stack.names.table("SessionsTable"),
        Key={"pk": {"S": f"PATIENT#{patient_key}"}, "sk": {"S": f"YEAR#{year}"}},
        ConsistentRead=True,
    )["Item"]
    return int(item["used"]["N"])


def _declare(caller, body: dict, key: str, metrics) -> tuple[int, dict]:
    """What handlers/declare_session.py does once the body is parsed: the declaration under its key."""
    from msp.clock import programme_today
    from msp.errors import DomainError
    from msp.http_errors import answer_for
    from msp.sessions.declarations import declare_session
    from msp.sessions.rules import SessionDeclaration, session_id_for
    from msp.storage.access_journal import access_journal_store
    from msp.storage.secrets import patient_keyring
    from msp.storage.sessions import session_store

    declaration = SessionDeclaration.model_validate(body)
    try:
        answer = declare_session(
            session_store(),
            access_journal_store(),
            patient_keyring(),
            metrics,
            caller,
            declaration,
            programme_today(),
            session_id_for(caller.sub, key),
        )
    except DomainError as error:
        answer = answer_for(error)
        return answer.status, {"error": {"code": answer.code, "details": error.details}}
    return 201, answer.model_dump(mode="json")


def _race(calls: list[tuple], metrics: RecordedMetrics) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(calls))

    def run(call: tuple) -> tuple[int, dict]:
        barrier.wait(timeout=30)
        return _declare(*call, metrics)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _check_the_quota_was_filled_exactly(outcomes: list[tuple[int, dict]]) -> list[dict]:
    assert sorted(status for status, _ in outcomes) == [201] * QUOTA_2023 + [409] * (40 - QUOTA_2023), sorted(
        status for status, _ in outcomes
    )
    accepted = [answer for status, answer in outcomes if status == 201]
    assert sorted(answer["used"] for answer in accepted) == list(range(1, QUOTA_2023 + 1))
    # Exactly one assessment, the first counted, whichever request won the race to it.
    kinds = sorted((answer["ordinal"], answer["kind"], answer["amounts"]["price"]) for answer in accepted)
    assert kinds == [(1, "assessment", "40.00")] + [(n, "follow_up", "30.00") for n in range(2, QUOTA_2023 + 1)]
    assert len({answer["session_id"] for answer in accepted}) == QUOTA_2023
    for status, answer in outcomes:
        if status == 409:
            assert answer["error"]["code"] == "quota_exhausted"
            assert answer["error"]["details"] == [{"year": 2023, "used": QUOTA_2023, "quota": QUOTA_2023}]
    return accepted


def test_40_racing_declarations_by_4_psychologists_fill_a_quota_of_8_exactly(stack, new_patient):
    from msp.auth import Caller, Role
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store
    from tests.conftest import set_convention

    patient = new_patient()
    body = body_2023(patient)
    callers = []
    for department in ("75", "92", "13", "2A"):
        caller = Caller(sub=f"psy-{uuid.uuid4().hex[:10]}", roles=frozenset({Role.PSYCHOLOGIST}))
        set_convention(caller.sub, "accepted", department)
        callers.append(caller)
    calls = [(caller, body, str(uuid.uuid4())) for caller in callers for _ in range(DECLARATIONS_EACH)]
    assert len(calls) == PSYCHOLOGISTS * DECLARATIONS_EACH == 40

    metrics = RecordedMetrics()
    outcomes = _race(calls, metrics)

    accepted = _check_the_quota_was_filled_exactly(outcomes)
    # One business event per outcome: the 8 sessions recorded (the first an assessment), 32 quota refusals.
    declared = [event for event in metrics.events if event[0] == "session_declared"]
    assert sorted(declared) == [("session_declared", "assessment", None)] + [
        ("session_declared", "follow_up", None)
    ] * (QUOTA_2023 - 1)
    assert metrics.events.count(("quota_refused",)) == 40 - QUOTA_2023
    patient_key = patient_keyring().patient_key(patient["nir"], 2023)
    assert _counter(stack, patient_key, 2023) == QUOTA_2023
    items = _session_items(stack, patient_key)
    assert {item["session_id"]["S"] for item in items} == {answer["session_id"] for answer in accepted}
    assert {item["department"]["S"] for item in items} <= {"75", "92", "13", "2A"}
    tallied = [item for item in session_year_store().year_items(2023) if item["patient_key"] == patient_key]
    assert tallied[0]["tally_sk"].endswith("#COUNTER") and len(tallied) == 1 + QUOTA_2023

    # The same 40 calls again, racing: the 8 accepted replay their answer, the others are refused again.
    replays = RecordedMetrics()
    replayed = _race(calls, replays)
    for (status, answer), (replay_status, replay) in zip(outcomes, replayed, strict=True):
        assert replay_status == status
        if status == 201:
            assert replay == answer
    assert replays.events == [("quota_refused",)] * (40 - QUOTA_2023)  # replays declare nothing again
    assert _counter(stack, patient_key, 2023) == QUOTA_2023
    assert len(_session_items(stack, patient_key)) == QUOTA_2023


def test_one_declaration_sent_8_times_at_once_under_one_key_counts_once_and_answers_alike(stack, new_patient):
    """No separate idempotency record to hold the key while the first call runs: the calls race into the
    transaction, one puts the session, the others are refused by it and answer from it."""
    from msp.auth import Caller, Role
    from msp.storage.secrets import patient_keyring
    from tests.conftest import set_convention

    patient = new_patient()
    body = body_2023(patient)
    caller = Caller(sub=f"psy-{uuid.uuid4().hex[:10]}", roles=frozenset({Role.PSYCHOLOGIST}))
    set_convention(caller.sub, "accepted", "75")
    key = str(uuid.uuid4())

    metrics = RecordedMetrics()
    outcomes = _race([(caller, body, key)] * 8, metrics)

    assert [status for status, _ in outcomes] == [201] * 8, outcomes
    assert metrics.events == [("session_declared", "assessment", None)]
    assert all(answer == outcomes[0][1] for _, answer in outcomes) and outcomes[0][1]["used"] == 1
    patient_key = patient_keyring().patient_key(patient["nir"], 2023)
    assert _counter(stack, patient_key, 2023) == 1
    assert len(_session_items(stack, patient_key)) == 1


def test_40_concurrent_http_declarations_fill_a_quota_of_8_exactly(api, stack, conventioned, new_patient):
    from msp.storage.secrets import patient_keyring

    patient = new_patient()
    payload = body_2023(patient)
    tokens = [conventioned(department)[1] for department in ("75", "92", "13", "2A")]
    sent = [(token, payload, str(uuid.uuid4())) for token in tokens for _ in range(DECLARATIONS_EACH)]
    assert len(sent) == PSYCHOLOGISTS * DECLARATIONS_EACH == 40

    responses = _send_together(api, sent)

    accepted = _check_the_quota_was_filled_exactly([(r.status_code, r.json()) for r in responses])
    patient_key = patient_keyring().patient_key(patient["nir"], 2023)
    assert _counter(stack, patient_key, 2023) == QUOTA_2023
    items = _session_items(stack, patient_key)
    assert {item["session_id"]["S"] for item in items} == {answer["session_id"] for answer in accepted}

    # The very same 40 requests again, concurrently: the 8 accepted replay their answer, nothing new is written.
    replayed = _send_together(api, sent)
    by_key = {request[2]: response for request, response in zip(sent, responses, strict=True)}
    for request, replay in zip(sent, replayed, strict=True):
        first = by_key[request[2]]
        assert replay.status_code == first.status_code
        if first.status_code == 201:
            assert replay.json() == first.json()
    assert _counter(stack, patient_key, 2023) == QUOTA_2023
    assert len(_session_items(stack, patient_key)) == QUOTA_2023


def test_racing_cancellations_of_one_session_count_it_back_once(api, stack, conventioned, new_patient):
    from msp.auth import Caller, Role
    from msp.clock import programme_today
    from msp.errors import DomainError
    from msp.http_errors import answer_for
    from msp.sessions.declarations import cancel_session
    from msp.storage.access_journal import access_journal_store
    from msp.storage.secrets import patient_keyring
    from msp.storage.sessions import session_store

    sub, token = conventioned()
    caller = Caller(sub=sub, roles=frozenset({Role.PSYCHOLOGIST}))
    patient = new_patient()
    today = programme_today()
    payload = {"patient": patient, "date": today.isoformat(), "referral": REFERRAL}
    sessions = [api.declare_session(token, payload).json()["session_id"] for _ in range(3)]
    barrier = threading.Barrier(8)

    def cancel(_: int) -> int:
        barrier.wait(timeout=30)
        try:
            cancel_session(session_store(), access_journal_store(), caller, sessions[0], today)
        except DomainError as error:
            return answer_for(error).status
        return 204

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(cancel, range(8)))
    assert statuses == [204] + [404] * 7
    patient_key = patient_keyring().patient_key(patient["nir"], today.year)
    assert _counter(stack, patient_key, today.year) == 2
    assert len(_session_items(stack, patient_key)) == 2


def test_concurrent_first_declarations_for_one_patient_give_exactly_one_assessment(stack, new_patient):
    """6 psychologists declare the same new patient at once, each their own session: the kind follows the
    count each transaction restates, so exactly one is the assessment at 40.00, the others follow-ups."""
    from msp.auth import Caller, Role
    from msp.storage.secrets import patient_keyring
    from tests.conftest import set_convention

    patient = new_patient()
    callers = [Caller(sub=f"psy-{uuid.uuid4().hex[:10]}", roles=frozenset({Role.PSYCHOLOGIST})) for _ in range(6)]
    for caller in callers:
        set_convention(caller.sub, "accepted", "75")

    metrics = RecordedMetrics()
    outcomes = _race([(caller, body_2023(patient), str(uuid.uuid4())) for caller in callers], metrics)

    assert [status for status, _ in outcomes] == [201] * 6, outcomes
    # Counted as stored: the kind the transaction restated, not the one first read.
    assert (
        sorted(metrics.events)
        == [("session_declared", "assessment", None)] + [("session_declared", "follow_up", None)] * 5
    )
    kinds = sorted((answer["ordinal"], answer["kind"], answer["amounts"]["price"]) for _, answer in outcomes)
    assert kinds == [(1, "assessment", "40.00")] + [(n, "follow_up", "30.00") for n in range(2, 7)]
    patient_key = patient_keyring().patient_key(patient["nir"], 2023)
    stored = sorted((int(item["ordinal"]["N"]), item["kind"]["S"]) for item in _session_items(stack, patient_key))
    assert stored == [(1, "assessment")] + [(n, "follow_up") for n in range(2, 7)]
