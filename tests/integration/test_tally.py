"""The tally job on DynamoDB Local and the S3 server, through its Lambda handler.

A synthetic 2024 (the year the policy changed on 15 June: 8 sessions at 40/30 €, then 12 at 50 €) is stored,
some patients through the declaration transaction and the rest by bulk import; the test computes every
figure of the report itself, from the plan, with the prices written out here, and compares. Then: the same
year killed midway (a real SIGKILL of `make tally`'s process) or stopped for time, and resumed, gives the same
report; an injected drift is reported, then repaired with the repair flag.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from decimal import Decimal

import boto3
import pytest

from infra.synthetic import load_year, plan_year
from infra.template import ROOT

pytestmark = pytest.mark.integration

YEAR = 2024
QUOTA = 12  # the 2024 quota once the year is over (8 until 14 June)
SESSIONS = 1500
CHANGE = dt.date(2024, 6, 15)


def price_of(day: dt.date, first: bool) -> Decimal:
    if day < CHANGE:
        return Decimal("40.00") if first else Decimal("30.00")
    return Decimal("50.00")


# Who pays in each situation, the same in both periods: (AMO, AMC, State) shares, and whether the patient
# advances the price. Written out here, apart from policy_rules.json, for the report to be checked against.
PAYERS = {
    None: (Decimal("0.6"), Decimal("0.4"), Decimal(0), True),
    "css": (Decimal("0.6"), Decimal("0.4"), Decimal(0), False),
    "ame": (Decimal(0), Decimal(0), Decimal(1), False),
    "ald": (Decimal(1), Decimal(0), Decimal(0), False),
    "maternite": (Decimal(1), Decimal(0), Decimal(0), False),
    "at_mp": (Decimal(1), Decimal(0), Decimal(0), False),
    "accident_tiers": (Decimal("0.6"), Decimal("0.4"), Decimal(0), False),
}
SITUATION_KEYS = ["none", "css", "ame", "ald", "maternite", "at_mp", "accident_tiers"]


def money(value: Decimal) -> str:
    return f"{value:.2f}"


class Year:
    def __init__(self, plan, keys):
        self.plan, self.keys = plan, keys


@pytest.fixture(scope="module")
def year_2024(tally_storage):
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    plan = plan_year(YEAR, SESSIONS, seed=2024, tag="truth", unknown_department=True)
    keyring = patient_keyring()
    load_year(session_year_store(), plan, keyring, declare_patients=range(12))
    keys = {session.patient: keyring.patient_key(session.nir, YEAR) for session in plan.sessions}
    return Year(plan, keys)


def s3():
    return boto3.client("s3", region_name="eu-west-3")


def read(bucket: str, key: str) -> bytes:
    return s3().get_object(Bucket=bucket, Key=key)["Body"].read()


def report_of(tally_storage, run_id: str, year: int = YEAR) -> dict:
    document = json.loads(read(tally_storage["bucket"], f"reports/{year}/{run_id}/report.json"))
    document.pop("generated_at")
    return document


def csv_of(tally_storage, run_id: str, year: int = YEAR) -> dict[str, bytes]:
    prefix = f"reports/{year}/{run_id}/"
    listed = s3().list_objects_v2(Bucket=tally_storage["bucket"], Prefix=prefix)["Contents"]
    return {
        e["Key"].removeprefix(prefix): read(tally_storage["bucket"], e["Key"])
        for e in listed
        if e["Key"].endswith(".csv")
    }


def tally(stack, **event) -> dict:
    return stack.runtime.invoke("TallySessionsFunction", {"year": YEAR} | event)


@pytest.fixture(scope="module")
def baseline(stack, year_2024, tally_storage):
    outcome = tally(stack, run_id="baseline")
    assert outcome["status"] == "complete", outcome
    return report_of(tally_storage, "baseline")


# --- the truth, computed here from the plan


def _group() -> dict:
    return {
        "sessions": 0,
        "patients": set(),
        "total": Decimal(0),
        "amo": Decimal(0),
        "amc": Decimal(0),
        "state": Decimal(0),
        "tp_sessions": 0,
        "tp_total": Decimal(0),
        "adv": 0,
        "kinds": Counter(),
        "situations": Counter(),
    }


def _count_in(group: dict, session) -> None:
    price = price_of(session.date, session.ordinal == 1)
    amo, amc, state, advances = PAYERS[session.situation]
    group["sessions"] += 1
    group["patients"].add(session.patient)
    group["total"] += price
    group["amo"] += price * amo
    group["amc"] += price * amc
    group["state"] += price * state
    group["adv"] += price if advances else 0
    if not advances:
        group["tp_sessions"] += 1
        group["tp_total"] += price
    group["kinds"]["assessment" if session.ordinal == 1 else "follow_up"] += 1
    group["situations"][session.situation or "none"] += 1


def truth(year: Year) -> dict:
    plan = year.plan
    by_patient = defaultdict(list)
    for session in plan.sessions:
        by_patient[session.patient].append(session)
    count = {patient: len(sessions) for patient, sessions in by_patient.items()}
    groups = {"departments": defaultdict(_group), "psychologists": defaultdict(_group), "months": defaultdict(_group)}
    groups["rules"] = defaultdict(_group)
    psychologists_of = defaultdict(set)
    departments_of = defaultdict(set)
    department_months = Counter()
    for session in plan.sessions:
        department = plan.psychologists[session.psychologist]
        keys = {
            "departments": department,
            "psychologists": session.psychologist,
            "months": session.date.isoformat()[:7],
            "rules": "2022-04-05" if session.date < CHANGE else "2024-06-15",
        }
        for kind, key in keys.items():
            _count_in(groups[kind][key], session)
        psychologists_of[department].add(session.psychologist)
        departments_of[session.psychologist].add(department)
        department_months[department, session.date.isoformat()[:7]] += 1

    def figures(group: dict) -> dict:
        return {
            "sessions": group["sessions"],
            "patients": len(group["patients"]),
            "amount_total": money(group["total"]),
            "amount_amo": money(group["amo"]),
            "amount_amc": money(group["amc"]),
            "amount_state": money(group["state"]),
            "amount_patient_advance": money(group["adv"]),
            "sessions_assessment": group["kinds"]["assessment"],
            "sessions_follow_up": group["kinds"]["follow_up"],
            "sessions_by_situation": {key: group["situations"][key] for key in SITUATION_KEYS},
            "tiers_payant_sessions": group["tp_sessions"],
            "amount_tiers_payant": money(group["tp_total"]),
            "patients_at_quota": sum(1 for p in group["patients"] if count[p] >= QUOTA),
            "patients_one_left": sum(1 for p in group["patients"] if count[p] == QUOTA - 1),
        }

    order = lambda department: (department is None, department or "")  # noqa: E731 - unknown department last
    everyone = _group()
    for session in plan.sessions:
        _count_in(everyone, session)
    near = []
    for patient, sessions in by_patient.items():
        if len(sessions) >= QUOTA - 1:
            near.append(
                {
                    "patient_key": year.keys[patient],
                    "sessions": len(sessions),
                    "quota": QUOTA,
                    "remaining": max(QUOTA - len(sessions), 0),
                    "status": "at_quota" if len(sessions) >= QUOTA else "one_left",
                    "departments": sorted({plan.psychologists[s.psychologist] for s in sessions}, key=order),
                    "last_session": max(s.date for s in sessions).isoformat(),
                }
            )
    return {
        "totals": figures(everyone)
        | {
            "psychologists": len({s.psychologist for s in plan.sessions}),
            "departments": len(groups["departments"]),
            "counters": len(by_patient),
            "drifts": 0,
        },
        "departments": [
            {"department": department, "psychologists": len(psychologists_of[department])} | figures(group)
            for department, group in sorted(groups["departments"].items(), key=lambda item: order(item[0]))
        ],
        "psychologists": [
            {"psychologist_sub": sub, "departments": sorted(departments_of[sub], key=order)} | figures(group)
            for sub, group in sorted(groups["psychologists"].items())
        ],
        "months": [{"month": month} | figures(group) for month, group in sorted(groups["months"].items())],
        "rules": [{"valid_from": rule} | figures(group) for rule, group in sorted(groups["rules"].items())],
        "patients_near_quota": sorted(near, key=lambda entry: entry["patient_key"]),
        "distribution": [
            {"sessions": sessions, "patients": patients}
            for sessions, patients in sorted(Counter(count.values()).items())
        ],
        "drifts": [],
        "department_months": [
            {"department": department, "month": month, "sessions": sessions}
            for (department, month), sessions in sorted(
                department_months.items(), key=lambda i: (order(i[0][0]), i[0][1])
            )
        ],
    }


def test_every_figure_of_the_report_is_the_truth_across_the_policy_change(baseline, year_2024):
    expected = truth(year_2024)
    assert baseline["year"] == YEAR and baseline["as_of"] == "2024-12-31" and baseline["quota"] == QUOTA
    assert baseline["final"] is False and baseline["run_id"] == "baseline"
    for section in expected:
        assert baseline[section] == expected[section], section
    # The plan really spans the change and the quota: otherwise the comparison proves little.
    assert [rule["valid_from"] for rule in baseline["rules"]] == ["2022-04-05", "2024-06-15"]
    assert baseline["totals"]["patients_at_quota"] > 0 and baseline["totals"]["patients_one_left"] > 0
    assert any(row["department"] is None for row in baseline["departments"])
    assert {"2A", "971"} <= {row["department"] for row in baseline["departments"]}
    # Every situation and both kinds occur, and every payer pays something.
    assert all(baseline["totals"]["sessions_by_situation"][key] > 0 for key in SITUATION_KEYS)
    assert baseline["totals"]["sessions_assessment"] == baseline["totals"]["patients"]
    assert all(Decimal(baseline["totals"][name]) > 0 for name in ("amount_amo", "amount_amc", "amount_state"))


def test_the_csv_files_say_the_same_in_french_spreadsheet_form(baseline, tally_storage):
    files = csv_of(tally_storage, "baseline")
    content = files["departments.csv"]
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content[3:].decode("utf-8"), newline=""), delimiter=";"))
    assert rows[0][:3] == ["Département", "Psychologues", "Séances"]
    for line, department in zip(rows[1:], baseline["departments"], strict=True):
        assert line[0] == (department["department"] or "inconnu")
        assert line[4] == department["amount_total"].replace(".", ",")
        assert int(line[2]) == department["sessions"]
    near = list(csv.reader(io.StringIO(files["patients_near_quota.csv"][3:].decode(), newline=""), delimiter=";"))
    assert len(near) - 1 == len(baseline["patients_near_quota"])


def test_the_latest_pointer_and_the_summary_name_the_last_complete_run(baseline, tally_storage):
    pointer = json.loads(read(tally_storage["bucket"], f"reports/{YEAR}/latest.json"))
    summary = json.loads(read(tally_storage["bucket"], pointer["summary"]))
    assert summary["year"] == YEAR and summary["departments"] == baseline["departments"]


def test_no_nir_is_written_anywhere(baseline, year_2024, tally_storage):
    nirs = {session.nir for session in year_2024.plan.sessions}
    bucket = tally_storage["bucket"]
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    contents = [read(bucket, entry["Key"]).decode("utf-8-sig") for page in pages for entry in page.get("Contents", [])]
    assert len(contents) > 20
    assert not [nir for nir in nirs if any(nir in content or nir[:13] in content for content in contents)]


def test_the_same_inputs_give_the_same_figures(stack, baseline, tally_storage):
    assert tally(stack, run_id="again")["status"] == "complete"
    again = report_of(tally_storage, "again")
    assert again | {"run_id": None} == baseline | {"run_id": None}
    assert csv_of(tally_storage, "again") == csv_of(tally_storage, "baseline")


def test_a_run_killed_midway_then_resumed_gives_exactly_the_same_report(stack, baseline, tally_storage, tmp_path):
    """`make tally`'s process is killed with SIGKILL once every shard has saved a checkpoint (no clean stop)."""
    connection = tmp_path / "connection.json"
    environment = {k: v for k, v in tally_storage["environment"].items() if k in stack.environment}
    environment |= {"SESSIONS_TABLE": tally_storage["table"], "DOCUMENTS_BUCKET": tally_storage["bucket"]}
    environment = {k: v for k, v in environment.items() if not k.endswith("_DEV_SECRET")}
    connection.write_text(json.dumps({"workdir": str(stack.workdir), "environment": environment}))
    command = [sys.executable, "-m", "infra.tally", "--connection", str(connection), "--year", str(YEAR)]
    command += ["--run-id", "killed", "--page-size", "5", "--checkpoint-seconds", "0", "--progress-seconds", "0"]
    command += ["--no-copy"]
    log = (tmp_path / "tally.log").open("w+")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    bucket, prefix = tally_storage["bucket"], f"tally-work/{YEAR}/killed/"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            listed = s3().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            if sum(1 for entry in listed if "/shard-" in entry["Key"]) == 16:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed:\n" + log.read()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    log.seek(0)
    printed = log.read()
    assert "tally started" in printed and "rows_read=" in printed, printed

    manifest = json.loads(read(bucket, f"{prefix}run.json"))
    checkpoints = [json.loads(read(bucket, f"{prefix}shard-{shard:02d}.json")) for shard in range(16)]
    assert manifest["status"] == "running" and not all(checkpoint["done"] for checkpoint in checkpoints)
    with pytest.raises(s3().exceptions.NoSuchKey):
        s3().get_object(Bucket=bucket, Key=f"reports/{YEAR}/killed/report.json")

    resumed = tally(stack, run_id="killed")
    assert resumed["status"] == "complete"
    assert 0 < resumed["rows_read"] < baseline["totals"]["sessions"] + baseline["totals"]["counters"]
    assert report_of(tally_storage, "killed") | {"run_id": None} == baseline | {"run_id": None}
    assert csv_of(tally_storage, "killed") == csv_of(tally_storage, "baseline")


class RunningOut:
    """A Lambda context whose time runs out after some reads: the handler must stop cleanly and save."""

    function_name, memory_limit_in_mb, aws_request_id = "TallySessionsFunction", 1024, "r-1"
    invoked_function_arn = "arn:aws:lambda:eu-west-3:000000000000:function:TallySessionsFunction"

    def __init__(self, calls: int):
        self.calls = calls

    def get_remaining_time_in_millis(self) -> int:
        self.calls -= 1
        return 900_000 if self.calls > 0 else 5_000


def test_a_run_stopped_by_the_timeout_resumes_in_the_next_invocation_to_the_same_report(stack, baseline, tally_storage):
    handler = stack.runtime.handler("TallySessionsFunction")
    event = {"year": YEAR, "run_id": "timed-out", "page_size": 20}
    outcomes = [handler(event, RunningOut(calls=25))]
    assert outcomes[0]["status"] == "incomplete" and outcomes[0]["shards_done"] < 16
    while outcomes[-1]["status"] == "incomplete" and len(outcomes) < 20:
        outcomes.append(handler(event, RunningOut(calls=30)))
    assert outcomes[-1]["status"] == "complete" and len(outcomes) >= 2
    assert sum(outcome["rows_read"] for outcome in outcomes) >= baseline["totals"]["sessions"]
    assert report_of(tally_storage, "timed-out") | {"run_id": None} == baseline | {"run_id": None}


# --- drift


def _counter_key(patient_key: str, year: int) -> dict:
    return {"pk": {"S": f"PATIENT#{patient_key}"}, "sk": {"S": f"YEAR#{year}"}}


def test_an_injected_drift_is_reported_then_repaired_with_the_repair_flag(stack, tally_storage):
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    year = 2023  # its own year in the module's table: the other tests' figures stay as they are
    plan = plan_year(year, 120, seed=7, tag="drift")
    keyring = patient_keyring()
    load_year(session_year_store(), plan, keyring)
    sessions = Counter(keyring.patient_key(s.nir, year) for s in plan.sessions)
    inflated, missing, recent = sorted(sessions)[:3]
    client = boto3.client("dynamodb", region_name="eu-west-3")
    table = tally_storage["table"]
    long_ago = "2023-06-01T00:00:00.000000Z"
    client.update_item(
        TableName=table,
        Key=_counter_key(inflated, year),
        UpdateExpression="SET used = :used, updated_at = :then",
        ExpressionAttributeValues={":used": {"N": str(sessions[inflated] + 2)}, ":then": {"S": long_ago}},
    )
    client.delete_item(TableName=table, Key=_counter_key(missing, year))
    client.update_item(  # a counter touched just now: it may only look drifted (index lag), so it is left alone
        TableName=table,
        Key=_counter_key(recent, year),
        UpdateExpression="SET used = used + :one, updated_at = :now",
        ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"S": dt.datetime.now(dt.UTC).isoformat()}},
    )

    def counter(key):
        item = client.get_item(TableName=table, Key=_counter_key(key, year), ConsistentRead=True).get("Item")
        return int(item["used"]["N"]) if item else None

    assert tally(stack, year=year, run_id="drift-seen")["totals"]["drifts"] == 3
    seen = report_of(tally_storage, "drift-seen", year)["drifts"]
    assert [(d["patient_key"], d["counter"], d["sessions"], d["repair"]) for d in seen] == sorted(
        [
            (inflated, sessions[inflated] + 2, sessions[inflated], None),
            (missing, None, sessions[missing], None),
            (recent, sessions[recent] + 1, sessions[recent], None),
        ]
    )
    assert (counter(inflated), counter(missing)) == (sessions[inflated] + 2, None), "no repair without the flag"
    assert seen == report_of(tally_storage, "drift-seen", year)["drifts"]
    drifts_csv = csv_of(tally_storage, "drift-seen", year)["drifts.csv"].decode("utf-8-sig")
    assert inflated in drifts_csv

    outcome = tally(stack, year=year, run_id="drift-repair", repair=True)
    assert outcome["totals"]["repaired"] == 2
    repaired = {d["patient_key"]: d["repair"] for d in report_of(tally_storage, "drift-repair", year)["drifts"]}
    assert repaired == {inflated: "repaired", missing: "repaired", recent: "too_recent"}
    assert (counter(inflated), counter(missing), counter(recent)) == (
        sessions[inflated],
        sessions[missing],
        sessions[recent] + 1,
    )
    assert "réparé" in csv_of(tally_storage, "drift-repair", year)["drifts.csv"].decode("utf-8-sig")

    after = tally(stack, year=year, run_id="drift-after")
    assert [d["patient_key"] for d in report_of(tally_storage, "drift-after", year)["drifts"]] == [recent]
    assert after["totals"]["sessions"] == len(plan.sessions)
