"""The tally's storage on moto: reading a year shard by shard, repairing counters, bulk import, report objects."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra.provision import table_definition
from infra.template import load_template
from msp.sessions import policy
from msp.sessions.rules import PatientKeyring, SessionRecord, SessionRequest
from msp.tally.rules import CHANGED_SINCE_READ, REPAIRED, CounterRow, SessionRow
from tests.conftest import nir_for

KEYRING = PatientKeyring.from_secret(json.dumps({"key_id": "k1", "secret": "s" * 64}))
RULE = policy.rule_for(dt.date(2024, 3, 1))  # 8 sessions, assessment 40.00, follow-up 30.00


def patient(number: int) -> str:
    return KEYRING.patient_key(nir_for(dt.date(1990, 5, 1), order=f"{number:03d}"), 2024)


def request(number: int, patient_key: str, day: int = 1, psychologist: str = "psy-1") -> SessionRequest:
    return SessionRequest(
        session_id=f"00000000-0000-4000-8000-{number:012d}",
        patient_key=patient_key,
        psychologist_sub=psychologist,
        date=dt.date(2024, 3, day),
        situation=policy.checked_situation(RULE, "css"),
        referral=None,
        rule=RULE,
        created_at=f"2024-03-{day:02d}T12:00:00.000000Z",
    )


def record(number: int, patient_key: str, day: int = 1, ordinal: int = 1) -> SessionRecord:
    return request(number, patient_key, day).priced(ordinal)


@pytest.fixture
def storage(moto_env):
    from tests.storage_view import StorageView

    storage = StorageView()

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-3")
        template = load_template()
        tables = {
            "AppTable": "msp-unit-app",
            "SessionsTable": "msp-unit-sessions",
            "AccessJournalTable": "msp-unit-journal",
        }
        for logical_id, name in tables.items():
            client.create_table(**table_definition(name, template.tables[logical_id]))
        boto3.client("s3", region_name="eu-west-3").create_bucket(
            Bucket="msp-unit-documents", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        yield storage


def shard_rows(storage, year: int, shard: int, page_size: int | None = None) -> list[list]:
    return [rows for rows, _ in storage.session_store().year_pages(year, shard, page_size=page_size)]


def all_rows(storage, year: int = 2024) -> list:
    return [row for shard in range(16) for page in shard_rows(storage, year, shard) for row in page]


def test_a_declared_session_reads_back_as_the_tallys_rows(storage):
    storage.record_convention(
        psychologist_sub="psy-1",
        status="accepted",
        candidature_id="c1",
        psychologist_id="p1",
        department="2A",
        updated_at="2024-01-01T00:00:00Z",
    )
    key = patient(1)
    storage.session_store().record_declaration(request(1, key))
    counter, session = all_rows(storage)
    assert isinstance(counter, CounterRow) and (counter.patient_key, counter.used) == (key, 1)
    assert counter.updated_at == "2024-03-01T12:00:00.000000Z"
    assert session == SessionRow(
        key, "psy-1", "2A", "2024-03-01", "assessment", "css", 4000, 2400, 1600, 0, 0, "2022-04-05"
    )


def test_pages_resume_after_their_last_key_and_end_with_none(storage):
    key = patient(1)
    store = storage.session_store()
    store.import_sessions([(record(n, key, day=n, ordinal=n), "75") for n in range(1, 6)])
    shard = int(storage.year_shard(key, 2024).split("#")[1])
    pages = list(store.year_pages(2024, shard, page_size=2))
    assert [len(rows) for rows, _ in pages] == [2, 2, 2]
    assert pages[-1][1] is None and all(last is not None for _, last in pages[:-1])
    rest = list(store.year_pages(2024, shard, start_key=pages[0][1], page_size=10))
    assert [row for rows, _ in rest for row in rows] == [row for rows, _ in pages[1:] for row in rows]
    assert list(store.year_pages(2023, shard)) == [([], None)]


def test_import_writes_sessions_with_their_ordinals_and_one_counter_per_patient(storage):
    first, second = patient(1), patient(2)
    written = storage.session_store().import_sessions(
        [(record(n, first, day=10 - n, ordinal=3 - n), "75") for n in range(3)] + [(record(9, second), None)]
    )
    assert written == 6
    rows = all_rows(storage)
    counters = {row.patient_key: row.used for row in rows if isinstance(row, CounterRow)}
    assert counters == {first: 3, second: 1}
    assert {row.department for row in rows if isinstance(row, SessionRow) and row.patient_key == second} == {""}
    item = boto3.client("dynamodb", region_name="eu-west-3").get_item(
        TableName="msp-unit-sessions",
        Key={"pk": {"S": f"SESSION#{record(2, first).session_id}"}, "sk": {"S": "SESSION"}},
    )["Item"]
    assert (item["ordinal"], item["kind"], item["price"]) == ({"N": "1"}, {"S": "assessment"}, {"N": "40.00"})


@pytest.mark.parametrize(("stored", "cents"), [("50", 5000), ("30.5", 3050), ("12.34", 1234), ("0", 0)])
def test_amounts_become_exact_cents(storage, stored, cents):
    assert storage._cents(stored) == cents


def test_an_amount_with_a_fraction_of_a_cent_is_refused(storage):
    with pytest.raises(ValueError, match="fraction of a cent"):
        storage._cents("0.001")


def _counter(storage, key: str) -> dict:
    item = boto3.client("dynamodb", region_name="eu-west-3").get_item(
        TableName="msp-unit-sessions", Key={"pk": {"S": f"PATIENT#{key}"}, "sk": {"S": "YEAR#2024"}}
    )
    return storage.from_item(item["Item"]) if "Item" in item else {}


def test_a_drifted_counter_is_repaired_once_and_a_moved_one_is_left_alone(storage):
    key = patient(1)
    store = storage.session_store()
    store.import_sessions([(record(n, key, day=n, ordinal=n), "75") for n in range(1, 3)])
    seen = _counter(storage, key)
    arguments = {"seen": 5, "seen_updated_at": seen["updated_at"], "sessions": 2, "run_id": "r1", "now": "now"}
    assert store.repair_counter(key, 2024, **arguments) == CHANGED_SINCE_READ  # it holds 2, not 5
    # the tally found 3 sessions where the counter says 2
    arguments |= {"seen": 2, "sessions": 3}
    assert store.repair_counter(key, 2024, **arguments) == REPAIRED
    assert _counter(storage, key)["used"] == 3 and _counter(storage, key)["repaired_by"] == "r1"
    assert store.repair_counter(key, 2024, **arguments) == REPAIRED, "a resumed run finds its own repair"
    assert store.repair_counter(key, 2024, **(arguments | {"run_id": "r2"})) == CHANGED_SINCE_READ


def test_a_missing_counter_is_created_where_the_index_finds_it(storage):
    key = patient(1)
    store = storage.session_store()
    assert (
        store.repair_counter(key, 2024, seen=None, seen_updated_at=None, sessions=2, run_id="r1", now="t") == REPAIRED
    )
    (counter,) = [row for row in all_rows(storage) if isinstance(row, CounterRow)]
    assert (counter.patient_key, counter.used) == (key, 2)
    again = store.repair_counter(key, 2024, seen=None, seen_updated_at=None, sessions=2, run_id="r2", now="t")
    assert again == CHANGED_SINCE_READ


def test_report_store_keeps_a_runs_manifest_and_checkpoints(storage):
    reports = storage.report_store()
    assert reports.run_state(2024, "r1") == (None, {})
    reports.save_run(2024, "r1", {"status": "running"})
    reports.save_checkpoint(2024, "r1", 3, {"shard": 3, "done": False})
    reports.save_checkpoint(2024, "r2", 4, {"shard": 4, "done": True})
    assert reports.run_state(2024, "r1") == ({"status": "running"}, {3: {"shard": 3, "done": False}})


def test_latest_is_none_until_a_report_is_complete(storage):
    reports = storage.report_store()
    assert reports.latest(2024) is None
    reports.write_report(2024, "r1", {"summary.json": (b'{"year": 2024}', "application/json")})
    reports.set_latest(2024, {"summary": "reports/2024/r1/summary.json"})
    assert reports.latest(2024) == {"summary": "reports/2024/r1/summary.json"}
    assert reports.read_json(reports.latest(2024)["summary"]) == {"year": 2024}
    assert reports.latest(2025) is None


def test_without_list_permission_a_missing_pointer_is_still_none(moto_env):
    from tests.storage_view import StorageView

    storage = StorageView()

    client = storage.s3_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("get_object", "AccessDenied", http_status_code=403)
        stubber.add_response("list_objects_v2", {"KeyCount": 0})
        assert storage.report_store().latest(2024) is None
        stubber.add_client_error("get_object", "AccessDenied", http_status_code=403)
        stubber.add_response("list_objects_v2", {"Contents": [{"Key": "reports/2024/latest.json"}]})
        with pytest.raises(storage.ClientError):
            storage.report_store().latest(2024)
