"""The load test's own parts (`make load` only runs them): the patients it makes up, its mix, how it judges an
answer, the locust run it drives (bounded, its CSV statistics kept), and above all its invariant checks, which
must pass on data the real code writes and fail on each kind of broken data."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from infra.template import ROOT, load_template
from msp.sessions.nir import birth_date_problem, nir_problem
from tests.load import invariants
from tests.load.stack import StackFailed, loopback_only
from tests.load.traffic import (
    ACTIONS,
    DECLARE,
    EXPECTED_REFUSALS,
    PATCH,
    READS,
    SEARCH,
    default_read,
    error_code,
    is_expected,
    mix,
    random_patient,
)
from tests.unit.aws_faults import (
    PATIENT_KEY_DOCUMENT,
    TABLES,
    conventioned,
    declaration_body,
    moto_world,
    psychologist,
    reviewer,
    stored_candidature,
)

TODAY = dt.date(2026, 11, 20)


def test_made_up_patients_have_valid_nirs_matching_their_birth_date_and_are_old_enough():
    rng = random.Random(1)
    patients = [random_patient(rng, TODAY) for _ in range(2000)]
    for patient in patients:
        assert nir_problem(patient.nir) is None
        assert birth_date_problem(patient.nir, patient.birth_date) is None
        assert patient.birth_date <= dt.date(TODAY.year - 3, TODAY.month, TODAY.day)
    assert any(patient.nir[5:7] in {"2A", "2B"} for patient in patients), "Corsican NIRs are part of the mix"


def test_the_mix_is_80_10_5_5_over_actions_and_routes_the_template_has():
    routes = {route.route_key for route in load_template().routes}
    for read in READS:
        shares = mix(read)
        assert sum(shares.values()) == 100 and shares[read] == 80
        assert set(shares) <= set(ACTIONS)
    assert default_read(routes | {READS["search"]}) == "search"
    assert default_read(routes - {READS["search"]}) == "queue"
    assert {route for route, _, _ in EXPECTED_REFUSALS} <= routes


def test_an_answer_is_expected_when_2xx_or_a_refusal_a_busy_programme_gives():
    quota = {"error": {"code": "quota_exhausted", "message": "..."}}
    assert error_code(409, quota) == "quota_exhausted"
    assert error_code(201, {"error": {"code": "x"}}) == "" and error_code(502, "Bad Gateway") == ""
    assert is_expected(DECLARE, 201, "") and is_expected(SEARCH, 200, "")
    assert is_expected(DECLARE, 409, "quota_exhausted") and is_expected(PATCH, 412, "version_mismatch")
    assert not is_expected(PATCH, 409, "quota_exhausted")  # a refusal is expected on its own route only
    assert not is_expected(DECLARE, 409, "idempotency_conflict")
    assert not is_expected(SEARCH, 500, "") and not is_expected(SEARCH, 0, "")


class _Programme(BaseHTTPRequestHandler):
    """Answers the search, and declarations in turn: 201, 409 quota_exhausted, 500."""

    protocol_version = "HTTP/1.1"
    declarations = 0
    lock = threading.Lock()

    def _answer(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer(200, {"results": []})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        with self.lock:
            turn = type(self).declarations % 3
            type(self).declarations += 1
        answers = [(201, {"id": "s1"}), (409, {"error": {"code": "quota_exhausted"}}), (500, {"message": "boom"})]
        self._answer(*answers[turn])

    def log_message(self, *_args) -> None:
        pass


# Runs in a process of its own: importing locust patches the standard library for gevent.
_DRIVE = """
import datetime as dt, json, sys, time
from pathlib import Path
from tests.load.run import drive
from tests.load.traffic import Shared
from tests.load.users import programme_user

shared = Shared(today=dt.date(2026, 11, 20), patient_key=lambda nir, year: f"{nir}-{year}", declarers=["token"],
                readers=[], deciders=[], drafts=[], cold_patients=50)
started = time.monotonic()
environment = drive(programme_user(shared, {"search": 50, "declare": 50}, 7), sys.argv[1], users=3, spawn_rate=3,
                    seconds=2, csv_prefix=Path(sys.argv[2]))
print(json.dumps({"seconds": time.monotonic() - started, "declared": sum(shared.declared.values()),
                  "refused": [[*key, count] for key, count in shared.refused.items()],
                  "failures": environment.stats.total.num_failures, "requests": environment.stats.total.num_requests,
                  "crashes": len(environment.runner.exceptions)}))
"""


def test_the_locust_run_is_bounded_judges_each_answer_and_keeps_its_csv_statistics(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Programme)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run = subprocess.run(
            [sys.executable, "-c", _DRIVE, f"http://127.0.0.1:{server.server_port}", str(tmp_path / "locust")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert 2 <= result["seconds"] < 10 and result["crashes"] == 0
    refused = {(route, status, code): count for route, status, code, count in result["refused"]}
    declarations = result["declared"] + sum(refused.values())
    assert declarations >= 3 and abs(result["declared"] - refused[(DECLARE, 500, "")]) <= 1
    assert refused[(DECLARE, 409, "quota_exhausted")] >= 1
    assert result["failures"] == refused[(DECLARE, 500, "")]  # the expected refusal is no failure, the 500 is

    stats = (tmp_path / "locust_stats.csv").read_text().splitlines()
    assert any(line.startswith("GET,/v1/psychologists/search,") for line in stats)
    assert any(line.startswith("POST,/v1/sessions,") for line in stats)
    assert stats[-1].split(",")[2] == str(result["requests"])  # the aggregated row holds the final count
    failures = (tmp_path / "locust_failures.csv").read_text()
    assert "POST,/v1/sessions,CatchResponseError('500')" in failures and "quota_exhausted" not in failures
    assert len((tmp_path / "locust_stats_history.csv").read_text().splitlines()) > 2


def test_the_load_refuses_any_endpoint_off_loopback():
    loopback_only({"base_url": "http://127.0.0.1:3000", "environment": {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"}})
    with pytest.raises(StackFailed):
        loopback_only(
            {"base_url": "http://127.0.0.1:3000", "environment": {"AWS_ENDPOINT_URL_DYNAMODB": "https://x.io"}}
        )
    with pytest.raises(StackFailed):
        loopback_only({"base_url": "http://localhost.example.fr:3000", "environment": {}})


# ---------------------------------------------------------------- the invariant checks, on what the code writes


@pytest.fixture
def world(moto_env, monkeypatch):
    with moto_world(monkeypatch) as opened:
        yield opened


def _scan(table: str) -> list[dict]:
    return invariants.scan(boto3.client("dynamodb", region_name="eu-west-3"), TABLES[table])


def _declare(world, patients: list[str], times: int) -> dict:
    """`times` declarations for each NIR by one accepted psychologist: the 201 count by patient key."""
    from collections import Counter

    from msp.clock import programme_today
    from msp.sessions.rules import PatientKeyring

    conventioned("psy-load")
    today = programme_today()
    keyring = PatientKeyring.from_secret(PATIENT_KEY_DOCUMENT)
    declared = Counter()
    for nir in patients:
        for number in range(times):
            body = declaration_body(nir, dt.date(1990, 5, 14), today)
            answer = world.call(
                "POST", "/v1/sessions", psychologist("psy-load"), body, {"Idempotency-Key": f"k-{nir}-{number}"}
            )
            if answer.status == 201:
                declared[keyring.patient_key(nir, today.year)] += 1
    return declared


def _update(key: dict, expression: str, values: dict) -> None:
    boto3.client("dynamodb", region_name="eu-west-3").update_item(
        TableName=TABLES["SessionsTable"], Key=key, UpdateExpression=expression, ExpressionAttributeValues=values
    )


def test_session_checks_pass_on_declarations_up_to_and_past_the_quota(world):
    from tests.conftest import nir_for

    declared = _declare(world, [nir_for(dt.date(1990, 5, 14), order="001"), nir_for(dt.date(1990, 5, 14))], 14)
    checks = invariants.session_checks(_scan("SessionsTable"), declared)
    assert [check.problems for check in checks] == [[], [], [], [], []]
    by_session = "the first session counted is the one assessment, and its payers add up to its price"
    assert all(check.checked == (24 if check.name == by_session else 2) for check in checks)


@pytest.mark.parametrize(
    ("tampering", "broken"),
    [
        ("counter above quota", {"no counter above its quota", "every counter equals its number of sessions"}),
        ("counter behind its sessions", {"every counter equals its number of sessions"}),
        ("count handed out twice", {"each count handed out once (ordinals 1..n)"}),
        ("a 201 not stored", {"every declaration answered 201 is stored, once"}),
        (
            "a second assessment",
            {"the first session counted is the one assessment, and its payers add up to its price"},
        ),
    ],
)
def test_session_checks_catch_each_kind_of_broken_count(world, tampering, broken):
    from tests.conftest import nir_for

    declared = _declare(world, [nir_for(dt.date(1990, 5, 14))], 12)
    items = _scan("SessionsTable")
    (counter,) = [item for item in items if item["pk"].startswith("PATIENT#")]
    counter_key = {"pk": {"S": counter["pk"]}, "sk": {"S": counter["sk"]}}
    session = next(item for item in items if item["pk"].startswith("SESSION#") and int(item["ordinal"]) == 2)
    if tampering == "counter above quota":
        _update(counter_key, "SET used = :n", {":n": {"N": "13"}})
    elif tampering == "counter behind its sessions":
        _update(counter_key, "SET used = :n", {":n": {"N": "11"}})
    elif tampering == "count handed out twice":
        _update({"pk": {"S": session["pk"]}, "sk": {"S": "SESSION"}}, "SET ordinal = :n", {":n": {"N": "3"}})
    elif tampering == "a second assessment":
        _update({"pk": {"S": session["pk"]}, "sk": {"S": "SESSION"}}, "SET kind = :k", {":k": {"S": "assessment"}})
    else:
        declared[counter["patient_key"]] += 1

    failed = {check.name for check in invariants.session_checks(_scan("SessionsTable"), declared) if not check.ok}
    assert failed == broken


def _transitions(world, candidature_id: str, actions: list[str]) -> list[tuple[int, str]]:
    made = []
    for action in actions:
        version = world.storage.candidature_store().get(candidature_id).version
        body = {"action": action, "reason": "Motif." if action != "start_review" and action != "accept" else None}
        body["expected_version"] = version
        answer = world.call("POST", f"/v1/candidatures/{candidature_id}/transitions", reviewer("*"), body)
        assert answer.status == 200, answer.body
        made.append((answer.body["version"], action))
    return made


def test_audit_and_listing_checks_pass_on_what_transitions_write(world):
    accepted = stored_candidature("submitted", "psy-a")
    ended = stored_candidature("submitted", "psy-b")
    decisions = {
        accepted.id: _transitions(world, accepted.id, ["start_review", "accept"]),
        ended.id: _transitions(world, ended.id, ["start_review", "accept", "deconvention"]),
    }
    app, directory = _scan("AppTable"), _scan("DirectoryTable")
    checks = [*invariants.audit_checks(app, decisions), invariants.listing_check(app, directory)]
    assert [check.problems for check in checks] == [[], [], []]
    # practice items only: profiles and density counters share the table
    assert len([item for item in directory if "listing" in item]) == 1


def test_audit_checks_catch_a_transition_without_its_event_and_an_event_too_many(world):
    candidature = stored_candidature("submitted", "psy-a")
    decisions = {candidature.id: _transitions(world, candidature.id, ["start_review", "reject"])}
    client = boto3.client("dynamodb", region_name="eu-west-3")
    audit_key = {"pk": {"S": f"CANDIDATURE#{candidature.id}"}, "sk": {"S": "AUDIT#00000002"}}
    client.delete_item(TableName=TABLES["AppTable"], Key=audit_key)

    failed = {check.name for check in invariants.audit_checks(_scan("AppTable"), decisions) if not check.ok}
    assert failed == {
        "every status change has exactly one audit event",
        "every transition answered 200 has its audit event",
    }

    decisions[candidature.id].append((4, "deconvention"))  # answered 200 as the client saw it, never written
    assert not invariants.audit_checks(_scan("AppTable"), decisions)[1].ok


def test_listing_check_catches_an_acceptance_without_its_listing(world):
    candidature = stored_candidature("submitted", "psy-a")
    _transitions(world, candidature.id, ["start_review", "accept"])
    directory = _scan("DirectoryTable")
    assert invariants.listing_check(_scan("AppTable"), directory).ok
    assert not invariants.listing_check(_scan("AppTable"), []).ok


def test_drafts_check_catches_a_lost_edit(world):
    draft = stored_candidature("draft", "psy-edit")
    answer = world.call(
        "PATCH", f"/v1/candidatures/{draft.id}", psychologist("psy-edit"), {"experience_years": 3}, {"If-Match": "1"}
    )
    assert answer.status == 200
    assert invariants.drafts_check(_scan("AppTable"), {draft.id: 1}).ok
    assert not invariants.drafts_check(_scan("AppTable"), {draft.id: 2}).ok
