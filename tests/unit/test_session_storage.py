"""SessionStore and the patient keyring on moto and botocore stubs: requests made, retries, secrets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from infra.provision import table_definition
from infra.template import load_template
from msp.errors import IdempotencyKeyReused, NotConventioned, NotFound, QuotaExhausted, StorageBusy
from msp.http_errors import answer_for
from msp.sessions import policy
from msp.sessions.rules import PatientKeyring, SessionRequest
from tests.conftest import nir_for

SECRET_DOCUMENT = json.dumps({"key_id": "k1", "secret": "s" * 64})
PATIENT_KEY = PatientKeyring.from_secret(SECRET_DOCUMENT).patient_key(nir_for(dt.date(1990, 5, 1)), 2026)
RULE = policy.rule_for(dt.date(2026, 11, 20))
TODAY = dt.date(2026, 11, 20)


def session(number: int = 1, psychologist: str = "psy-1", quota: int = 12, situation: str | None = None):
    return SessionRequest(
        session_id=f"00000000-0000-4000-8000-{number:012d}",
        patient_key=PATIENT_KEY,
        psychologist_sub=psychologist,
        date=dt.date(2026, 11, 20),
        situation=RULE.situation(situation),
        referral=None,
        rule=RULE.model_copy(update={"sessions_per_year": quota}),
        created_at="2026-11-20T10:00:00.000000Z",
    )


@pytest.fixture
def tables(moto_env):
    """The template's tables on moto, and the storage module pointed at them."""
    from tests.storage_view import StorageView

    storage = StorageView()

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-3")
        template = load_template()
        names = {
            "AppTable": "msp-unit-app",
            "SessionsTable": "msp-unit-sessions",
            "AccessJournalTable": "msp-unit-journal",
        }
        for logical_id, name in names.items():
            client.create_table(**table_definition(name, template.tables[logical_id]))
        yield storage


def convention(storage, sub: str = "psy-1", status: str = "accepted", department: str = "75") -> None:
    storage.record_convention(
        psychologist_sub=sub,
        status=status,
        candidature_id="c1",
        psychologist_id="p1",
        department=department,
        updated_at="2026-01-01T00:00:00Z",
        start_date="2026-01-01",
    )


def requests_made(client) -> Counter:
    """Count every DynamoDB request the client sends, by operation (botocore event hook)."""
    made: Counter = Counter()
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: made.update([model.name]))
    return made


# --- requests per declaration, on moto


def test_a_declaration_is_one_read_and_one_transaction(tables):
    convention(tables)
    store = tables.session_store()
    made = requests_made(tables.dynamodb_client())
    assert store.record_declaration(session(1)).used == 1
    assert made == {"BatchGetItem": 1, "TransactWriteItems": 1}
    made.clear()
    assert store.record_declaration(session(2)).used == 2
    assert made == {"BatchGetItem": 1, "TransactWriteItems": 1}


def test_the_transaction_checks_the_convention_counts_and_puts_the_session(tables):
    convention(tables, department="2A")
    store = tables.session_store()
    sent = []
    tables.dynamodb_client().meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", lambda params, **_: sent.append(params["TransactItems"])
    )
    store.record_declaration(session(1))
    ((check, count, put, journal),) = sent
    assert check["ConditionCheck"]["Key"] == {"pk": {"S": "PSYCHOLOGIST#psy-1"}, "sk": {"S": "CONVENTION"}}
    assert check["ConditionCheck"]["ConditionExpression"] == "#status = :accepted AND department = :department"
    assert count["Update"]["Key"] == {"pk": {"S": f"PATIENT#{PATIENT_KEY}"}, "sk": {"S": "YEAR#2026"}}
    assert "#used < :quota" in count["Update"]["ConditionExpression"]
    assert put["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"
    item = put["Put"]["Item"]
    assert {name: item[name] for name in ("department", "price", "year", "key_id")} == {
        "department": {"S": "2A"},
        "price": {"N": "50.00"},
        "year": {"N": "2026"},
        "key_id": {"S": "k1"},
    }
    assert item["year_shard"]["S"] == tables.year_shard(PATIENT_KEY, 2026)
    assert (item["kind"], item["ordinal"], item["state"]) == ({"S": "assessment"}, {"N": "1"}, {"N": "0.00"})
    assert journal["Put"]["TableName"] == "msp-unit-journal"
    entry = journal["Put"]["Item"]
    assert (entry["action"], entry["outcome"], entry["patient_key"]) == (
        {"S": "declare"},
        {"S": "accepted"},
        {"S": PATIENT_KEY},
    )


def test_the_year_index_lists_each_patients_counter_then_its_sessions(tables):
    convention(tables)
    store = tables.session_store()
    for number in (1, 2):
        store.record_declaration(session(number))
    items = list(store.year_items(2026))
    assert [item["tally_sk"].split("#", 2)[2] for item in items] == [
        "COUNTER",
        f"SESSION#{session(1).session_id}",
        f"SESSION#{session(2).session_id}",
    ]
    assert list(store.year_items(2025)) == []


def test_quota_and_convention_refusals_need_no_transaction(tables):
    store = tables.session_store()
    made = requests_made(tables.dynamodb_client())
    with pytest.raises(NotConventioned):
        store.record_declaration(session(1))
    convention(tables, status="deconventioned")
    with pytest.raises(NotConventioned):
        store.record_declaration(session(1))
    convention(tables)
    store.record_declaration(session(1, quota=1))
    made.clear()
    with pytest.raises(QuotaExhausted) as refused:
        store.record_declaration(session(2, quota=1))
    assert answer_for(refused.value).code == "quota_exhausted"
    assert made == {"BatchGetItem": 1}


def test_a_declaration_run_again_under_its_session_id_counts_once(tables):
    convention(tables)
    store = tables.session_store()
    assert store.record_declaration(session(1, quota=1)).used == 1
    made = requests_made(tables.dynamodb_client())
    assert store.record_declaration(session(1, quota=1)).used == 1  # not a 409: it is the same session
    assert made == {"BatchGetItem": 1}
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 1
    other_body = dataclasses.replace(session(1, quota=1), date=dt.date(2026, 11, 19))
    with pytest.raises(IdempotencyKeyReused) as refused:
        store.record_declaration(other_body)
    assert answer_for(refused.value).code == "idempotency_key_reused"


def signed(number: int, digest: str = "k1:" + "a" * 64, **changes) -> SessionRequest:
    """A session as the handler records it: with the digest of the request that declared it."""
    return dataclasses.replace(session(number), request_digest=digest, **changes)


def test_a_replay_answers_from_the_session_item_not_from_the_counter_or_todays_policy(tables):
    convention(tables)
    store = tables.session_store()
    first = store.record_declaration(signed(1))
    assert store.record_declaration(signed(2)).used == 2
    assert store.record_declaration(signed(3)).used == 3
    # Replayed after other declarations, and as if the policy had changed meanwhile (other prices, quota).
    cheaper = policy.rule_for(dt.date(2023, 1, 1))
    made = requests_made(tables.dynamodb_client())
    replay = store.record_declaration(signed(1, rule=cheaper, created_at="2026-11-21T09:00:00Z"))
    assert made == {"BatchGetItem": 1}, "a replay writes nothing"
    assert replay == first
    assert replay.model_dump(mode="json") == {
        "session_id": session(1).session_id,
        "year": 2026,
        "used": 1,
        "quota": 12,
        "remaining": 11,
        "kind": "assessment",
        "ordinal": 1,
        "situation": None,
        "amounts": {"price": "50.00", "amo": "30.00", "amc": "20.00", "state": "0.00", "patient_advance": "50.00"},
    }
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 3


def test_another_body_under_the_same_session_id_is_refused_by_its_digest(tables):
    convention(tables)
    store = tables.session_store()
    store.record_declaration(signed(1))
    # Same stored fields, another request (here, another birth date: only the digest tells them apart).
    with pytest.raises(IdempotencyKeyReused) as refused:
        store.record_declaration(signed(1, digest="k1:" + "b" * 64))
    assert answer_for(refused.value).code == "idempotency_key_reused"
    with pytest.raises(IdempotencyKeyReused):
        store.record_declaration(signed(1, psychologist_sub="psy-2"))
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 1


def test_a_crash_after_the_transaction_is_answered_the_same_on_retry(tables, monkeypatch):
    """The function dies once its transaction is written, before it answers: the client's retry under the same
    key finds the session and gets the answer the lost one would have given, nothing counted twice."""
    convention(tables)
    store = tables.session_store()
    from msp.storage import sessions as session_storage

    real = session_storage.transact_write

    def write_then_crash(items):
        real(items)
        raise SystemExit("the function was stopped")

    monkeypatch.setattr(session_storage, "transact_write", write_then_crash)
    with pytest.raises(SystemExit):
        store.record_declaration(signed(1))
    monkeypatch.setattr(session_storage, "transact_write", real)
    retried = store.record_declaration(signed(1))
    assert (retried.used, retried.remaining, retried.session_id) == (1, 11, session(1).session_id)
    assert store.record_declaration(signed(1)) == retried
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 1


def test_cancelling_is_one_read_and_one_transaction(tables):
    convention(tables)
    store = tables.session_store()
    store.record_declaration(session(1))
    made = requests_made(tables.dynamodb_client())
    store.cancel(session(1).session_id, "psy-1", TODAY)
    assert made == {"GetItem": 1, "TransactWriteItems": 1}
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 0


def test_a_cancelled_session_stays_as_its_keys_record_unlinked_from_the_patient_and_out_of_the_year(tables):
    convention(tables)
    store = tables.session_store()
    first = store.record_declaration(signed(1))
    store.record_declaration(signed(2))
    store.cancel(session(1).session_id, "psy-1", TODAY)
    item = tables.dynamodb_client().get_item(
        TableName="msp-unit-sessions", Key={"pk": {"S": f"SESSION#{session(1).session_id}"}, "sk": {"S": "SESSION"}}
    )["Item"]
    assert "cancelled_at" in item
    assert not {"patient_key", "key_id", "department", "year_shard", "tally_sk"} & item.keys()
    assert [i["tally_sk"].rsplit("#", 1)[-1] for i in store.year_items(2026)] == ["COUNTER", session(2).session_id]
    # The declaration sent again under its key answers what it answered and declares nothing.
    assert store.record_declaration(signed(1)) == first
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 1
    with pytest.raises(NotFound):
        store.cancel(session(1).session_id, "psy-1", TODAY)
    assert store.sessions_used("psy-1", PATIENT_KEY, 2026) == 1


# --- races, with botocore's Stubber standing for DynamoDB


def _state(used: int | None, status: str = "accepted") -> dict:
    counter = {"pk": {"S": f"PATIENT#{PATIENT_KEY}"}, "sk": {"S": "YEAR#2026"}, "used": {"N": str(used)}}
    counters = [] if used is None else [counter]
    conventions = [{"status": {"S": status}, "department": {"S": "75"}, "start_date": {"S": "2022-04-05"}}]
    return {"Responses": {"msp-unit-app": conventions, "msp-unit-sessions": counters}}


def _cancelled(*codes: str, counter: int | None = None) -> dict:
    reasons = [{"Code": code} for code in codes]
    if counter is not None:
        reasons[1]["Item"] = {"used": {"N": str(counter)}}
    return {"CancellationReasons": reasons}


@pytest.fixture
def stubbed(moto_env, monkeypatch):
    from tests.storage_view import StorageView

    storage = StorageView()

    pauses = []
    monkeypatch.setattr(storage.time, "sleep", pauses.append)
    client = storage.dynamodb_client()
    with Stubber(client) as stubber:
        yield storage, stubber, pauses
        stubber.assert_no_pending_responses()


def test_a_transaction_conflict_is_retried_with_jittered_backoff(stubbed):
    storage, stubber, pauses = stubbed
    stubber.add_response("batch_get_item", _state(used=3))
    for _ in range(2):
        stubber.add_client_error(
            "transact_write_items",
            "TransactionCanceledException",
            modeled_fields=_cancelled("None", "TransactionConflict", "None", "None"),
        )
    stubber.add_response("transact_write_items", {}, {"TransactItems": ANY})
    assert storage.session_store().record_declaration(session(1)).used == 4
    assert len(pauses) == 2 and all(0 <= pause <= 0.04 for pause in pauses)


def test_endless_transaction_conflicts_end_in_a_503(stubbed):
    storage, stubber, _ = stubbed
    stubber.add_response("batch_get_item", _state(used=0))
    for _ in range(6):
        stubber.add_client_error(
            "transact_write_items",
            "TransactionCanceledException",
            modeled_fields=_cancelled("None", "TransactionConflict", "None", "None"),
        )
    with pytest.raises(StorageBusy):
        storage.session_store().record_declaration(session(1))


def test_a_counter_moved_meanwhile_is_retried_from_the_refusals_count_without_reading_again(stubbed):
    storage, stubber, _ = stubbed
    stubber.add_response("batch_get_item", _state(used=None))
    stubber.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        modeled_fields=_cancelled("None", "ConditionalCheckFailed", "None", "None", counter=5),
    )
    stubber.add_response("transact_write_items", {})
    answer = storage.session_store().record_declaration(session(1))
    # Read as the patient's first (an assessment), written as their sixth: a follow-up, at its price.
    assert (answer.used, answer.ordinal, answer.kind) == (6, 6, "follow_up")


def test_the_kind_and_price_written_follow_the_count_the_transaction_restates(stubbed):
    storage, stubber, _ = stubbed
    sent = []
    storage.dynamodb_client().meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", lambda params, **_: sent.append(params["TransactItems"])
    )
    earlier = policy.rule_for(dt.date(2023, 3, 1))
    first_period = dataclasses.replace(session(1), date=dt.date(2023, 3, 1), rule=earlier)
    stubber.add_response("batch_get_item", _state(used=None))
    stubber.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        modeled_fields=_cancelled("None", "ConditionalCheckFailed", "None", "None", counter=1),
    )
    stubber.add_response("transact_write_items", {})
    answer = storage.session_store().record_declaration(first_period)
    assert (answer.kind, answer.amounts.price) == ("follow_up", earlier.prices.follow_up)
    (first_put, second_put) = (items[2]["Put"]["Item"] for items in sent)
    assert (first_put["kind"], first_put["price"]) == ({"S": "assessment"}, {"N": "40.00"})
    assert (second_put["kind"], second_put["price"], second_put["ordinal"]) == (
        {"S": "follow_up"},
        {"N": "30.00"},
        {"N": "2"},
    )


def test_a_counter_that_reached_the_quota_meanwhile_is_a_409(stubbed):
    storage, stubber, _ = stubbed
    stubber.add_response("batch_get_item", _state(used=7))
    stubber.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        modeled_fields=_cancelled("None", "ConditionalCheckFailed", "None", "None", counter=8),
    )
    with pytest.raises(QuotaExhausted) as refused:
        storage.session_store().record_declaration(session(1, quota=8))
    assert answer_for(refused.value).code == "quota_exhausted"
    assert refused.value.details == [{"year": 2026, "used": 8, "quota": 8}]


def test_a_deconvention_landing_between_read_and_write_is_a_403(stubbed):
    storage, stubber, _ = stubbed
    stubber.add_response("batch_get_item", _state(used=2))
    reasons = _cancelled("ConditionalCheckFailed", "None", "None", "None")
    reasons["CancellationReasons"][0]["Item"] = {"status": {"S": "deconventioned"}}
    stubber.add_client_error("transact_write_items", "TransactionCanceledException", modeled_fields=reasons)
    with pytest.raises(NotConventioned):
        storage.session_store().record_declaration(session(1))


def test_the_same_request_racing_itself_gets_the_winners_answer_from_the_refusal(stubbed):
    """Two calls under one key read no session; the first transaction wins. The second's Put is refused with the
    stored session (ALL_OLD), which answers it: no second read, no second count."""
    storage, stubber, _ = stubbed
    stubber.add_response("batch_get_item", _state(used=3))
    stored = storage.session_item(signed(1).priced(4), "75")
    reasons = _cancelled("None", "ConditionalCheckFailed", "ConditionalCheckFailed", "None", counter=4)
    reasons["CancellationReasons"][2]["Item"] = stored
    stubber.add_client_error("transact_write_items", "TransactionCanceledException", modeled_fields=reasons)
    answer = storage.session_store().record_declaration(signed(1))
    assert (answer.used, answer.quota, answer.remaining) == (4, 12, 8)


def test_throttling_is_a_503_with_retry_after(stubbed):
    storage, stubber, _ = stubbed
    stubber.add_client_error("batch_get_item", "ProvisionedThroughputExceededException")
    with pytest.raises(StorageBusy) as refused:
        storage.session_store().record_declaration(session(1))
    assert answer_for(refused.value).headers == {"Retry-After": "2"}


# --- the patient key's secret


@pytest.fixture
def secrets_manager(moto_env, monkeypatch):
    monkeypatch.delenv("PATIENT_KEY_DEV_SECRET", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-3")
        arn = client.create_secret(Name="msp/unit/patient-key", SecretString=SECRET_DOCUMENT)["ARN"]
        monkeypatch.setenv("PATIENT_KEY_SECRET_ARN", arn)
        yield client, arn


def test_the_keyring_comes_from_secrets_manager_and_is_cached(secrets_manager):
    from tests.storage_view import StorageView

    storage = StorageView()

    keyring = storage.patient_keyring()
    assert keyring == PatientKeyring.from_secret(SECRET_DOCUMENT)
    made = Counter()
    storage._secrets_provider().client.meta.events.register(
        "before-call.secrets-manager.*", lambda model, **_: made.update([model.name])
    )
    assert storage.patient_keyring() == keyring
    assert made == {}, "a warm function reads the secret again"
    storage._secrets_provider().clear_cache()  # as when PATIENT_KEY_MAX_AGE has passed
    assert storage.patient_keyring() == keyring
    assert made == {"GetSecretValue": 1}


def test_a_rotated_secret_is_read_once_the_cache_expires(secrets_manager):
    from tests.storage_view import StorageView

    storage = StorageView()

    client, arn = secrets_manager
    storage.patient_keyring()
    rotated = {"keys": [json.loads(SECRET_DOCUMENT), {"key_id": "k2", "secret": "t" * 64, "from_year": 2027}]}
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(rotated))
    storage._secrets_provider().clear_cache()
    keyring = storage.patient_keyring()
    assert keyring.version_for(2026).key_id == "k1"
    assert keyring.version_for(2027).key_id == "k2"


def test_a_missing_secret_is_an_error_not_a_dev_fallback(moto_env, monkeypatch):
    from tests.storage_view import StorageView

    storage = StorageView()

    monkeypatch.delenv("PATIENT_KEY_SECRET_ARN", raising=False)
    monkeypatch.delenv("PATIENT_KEY_DEV_SECRET", raising=False)
    with pytest.raises(RuntimeError, match="PATIENT_KEY_SECRET_ARN"):
        storage.patient_keyring()


def test_the_dev_secret_is_refused_on_aws_lambda(moto_env, monkeypatch):
    from pydantic import ValidationError

    from msp import config

    monkeypatch.setenv("PATIENT_KEY_DEV_SECRET", SECRET_DOCUMENT)
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    with pytest.raises(ValidationError) as refused:
        config.settings()
    assert "local stack only" in str(refused.value)
    assert "s" * 32 not in str(refused.value)
