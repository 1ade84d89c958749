"""Session routes through the local gateway (JWT check, payload 2.0) on DynamoDB Local."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from msp.clock import programme_today
from tests.conftest import set_convention

TODAY = programme_today().isoformat()
FULL_PRICE = {"price": "50.00", "amo": "30.00", "amc": "20.00", "state": "0.00", "patient_advance": "50.00"}
REFERRAL = {"prescriber_rpps": "10000000009", "date": "2022-04-05"}  # an invented, Luhn-valid RPPS number


def body(patient: dict, date: str = TODAY, **changes) -> dict:
    return {"patient": patient, "date": date, "situation": None} | changes


def referred(patient: dict, date: str, **changes) -> dict:
    """A declaration of the first period, with its referral letter."""
    return body(patient, date, referral=REFERRAL, **changes)


def declared(api, token, payload, key=None) -> dict:
    response = api.declare_session(token, payload, key)
    assert response.status_code == 201, response.text
    return response.json()


def quota(api, token, patient, **fields):
    return api.call("POST", "/v1/sessions/quota", token=token, json={**patient, **fields})


def error_of(response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


# --- declaring


def test_a_declaration_answers_the_contract_shape(api, conventioned, new_patient):
    _, token = conventioned()
    answer = declared(api, token, body(new_patient()))
    assert set(answer) == {
        "session_id",
        "year",
        "used",
        "quota",
        "remaining",
        "kind",
        "ordinal",
        "situation",
        "amounts",
    }
    uuid.UUID(answer["session_id"])
    assert answer | {"session_id": None} == {
        "session_id": None,
        "year": programme_today().year,
        "used": 1,
        "quota": 12,
        "remaining": 11,
        "kind": "assessment",
        "ordinal": 1,
        "situation": None,
        "amounts": FULL_PRICE,
    }


def test_the_server_decides_the_kind_first_assessment_then_follow_up(api, conventioned, new_patient):
    _, token = conventioned()
    _, colleague = conventioned()
    patient = new_patient()
    first = declared(api, token, body(patient))
    # Counted across psychologists: the patient's second session of the year is a follow-up, wherever.
    second = declared(api, colleague, body(patient))
    assert [(a["kind"], a["ordinal"]) for a in (first, second)] == [("assessment", 1), ("follow_up", 2)]


def test_sending_a_first_session_flag_is_a_422_naming_it(api, conventioned, new_patient):
    _, token = conventioned()
    response = api.declare_session(token, body(new_patient(), first_session=True))
    assert response.status_code == 422
    assert error_of(response)["details"] == [{"field": "first_session", "message": "unknown field: remove it"}]


def test_the_contract_example_body_is_accepted(api, conventioned):
    _, token = conventioned()
    contract = {
        "patient": {"nir": "290057505612384", "birth_date": "1990-05-14"},
        "date": TODAY,
        "situation": None,
    }
    response = api.declare_session(token, contract)
    assert response.status_code in (201, 409), response.text  # the example patient is shared by every run
    if response.status_code == 201:
        assert response.json()["amounts"]["price"] == "50.00"


def test_counts_go_up_per_patient_and_tiers_payant_means_no_advance(api, conventioned, new_patient):
    _, token = conventioned()
    patient, other = new_patient(), new_patient()
    assert declared(api, token, body(patient))["used"] == 1
    second = declared(api, token, body(patient, situation="css"))
    assert (second["used"], second["remaining"], second["situation"]) == (2, 10, "css")
    assert second["amounts"] == FULL_PRICE | {"patient_advance": "0.00"}
    assert declared(api, token, body(other))["used"] == 1


def test_the_same_nir_typed_with_spaces_or_lowercase_is_the_same_patient(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    declared(api, token, body(patient))
    spaced = {**patient, "nir": " ".join([patient["nir"][:1], patient["nir"][1:5], patient["nir"][5:]])}
    assert declared(api, token, body(spaced))["used"] == 2


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"patient": {"nir": "290057505612385", "birth_date": "1990-05-14"}}, ["patient.nir"]),
        ({"patient": {"nir": "29005750561238", "birth_date": "1990-05-14"}}, ["patient.nir"]),
        ({"patient": {"nir": "290057505612384", "birth_date": "1991-05-14"}}, ["patient.birth_date"]),
        ({"patient": {"nir": "290057505612384", "birth_date": "1990-07-14"}}, ["patient.birth_date"]),
        ({"date": "2099-01-01"}, ["date"]),
        ({"date": "2022-04-04"}, ["date"]),
        ({"first_session": False}, ["first_session"]),
        ({"tiers_payant_reason": "css"}, ["tiers_payant_reason"]),
        ({"situation": "friend"}, ["situation"]),
        ({"referral": {"prescriber_rpps": "10000000008", "date": TODAY}}, ["referral.prescriber_rpps"]),
        ({"patient": {"nir": "290057505612384"}}, ["patient.birth_date"]),
        ({"nir": "290057505612384"}, ["nir"]),
    ],
)
def test_bad_declarations_get_a_422_naming_the_field_and_never_quoting_the_nir(api, conventioned, change, fields):
    _, token = conventioned()
    payload = body({"nir": "290057505612384", "birth_date": "1990-05-14"}) | change
    response = api.declare_session(token, payload)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in error_of(response)["details"]] == fields
    assert "2900575056123" not in response.text


def test_a_patient_under_3_on_the_session_date_is_refused(api, conventioned, new_patient):
    _, token = conventioned()
    today = programme_today()
    toddler = new_patient(today.replace(year=today.year - 2, day=1).isoformat())
    response = api.declare_session(token, body(toddler))
    assert response.status_code == 422
    assert error_of(response)["details"] == [
        {"field": "patient.birth_date", "message": "the patient must be 3 or older on the session date"}
    ]


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
        ({"data": b"[]", "headers": {"Content-Type": "application/json"}}, 422, "validation_error"),
        ({"data": b"{}", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
    ],
)
def test_unreadable_bodies_get_a_4xx(api, conventioned, send, status, code):
    _, token = conventioned()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), **send["headers"]}
    response = api.session.post(f"{api.base_url}/v1/sessions", data=send["data"], headers=headers, timeout=10)
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


# --- who may declare


def test_a_psychologist_without_an_accepted_candidature_gets_403(api, psychologist, new_patient):
    _, token = psychologist
    response = api.declare_session(token, body(new_patient()))
    assert response.status_code == 403
    assert error_of(response)["code"] == "not_conventioned"


def test_a_deconventioned_psychologist_gets_403_and_nothing_is_counted(api, conventioned, new_patient):
    sub, token = conventioned()
    patient = new_patient()
    declared(api, token, body(patient))
    set_convention(sub, "deconventioned")
    refused = api.declare_session(token, body(patient))
    assert refused.status_code == 403 and error_of(refused)["code"] == "not_conventioned"
    assert quota(api, token, patient).status_code == 403
    _, colleague = conventioned()
    assert quota(api, colleague, patient).json()["used"] == 1


def test_reviewers_and_admins_cannot_declare(api, new_patient):
    for token in (api.token("reviewer", departments="*"), api.token("admin")):
        response = api.declare_session(token, body(new_patient()))
        assert response.status_code == 403
        assert error_of(response)["code"] == "forbidden"


def test_declaring_needs_a_valid_token(api, new_patient):
    response = api.call("POST", "/v1/sessions", json=body(new_patient()), headers={"Idempotency-Key": "k" * 10})
    assert response.status_code == 401


# --- idempotency


def test_a_replay_with_the_same_key_returns_the_first_answer_and_counts_once(api, conventioned, new_patient):
    _, token = conventioned()
    patient, key = new_patient(), str(uuid.uuid4())
    first = declared(api, token, body(patient), key)
    assert declared(api, token, body(patient), key) == first
    assert quota(api, token, patient).json()["used"] == 1


def test_a_replay_after_other_declarations_answers_what_it_answered_then(api, conventioned, new_patient):
    _, token = conventioned()
    patient, key = new_patient(), str(uuid.uuid4())
    answered = api.declare_session(token, body(patient, situation="css"), key)
    assert answered.status_code == 201, answered.text
    declared(api, token, body(patient))
    declared(api, token, body(patient))
    replay = api.declare_session(token, body(patient, situation="css"), key)
    assert replay.status_code == 201
    assert replay.text == answered.text, "the replay is not the same JSON"
    first = replay.json()
    assert (first["used"], first["remaining"]) == (1, 11)
    assert first["amounts"] == FULL_PRICE | {"patient_advance": "0.00"}
    assert quota(api, token, patient).json()["used"] == 3


def test_a_declaration_writes_no_idempotency_record_its_session_is_the_record(api, stack, conventioned, new_patient):
    import boto3

    _, token = conventioned()
    first = declared(api, token, body(new_patient()), str(uuid.uuid4()))
    client = boto3.client("dynamodb", region_name="eu-west-3")
    records = client.scan(TableName=stack.names.table("IdempotencyTable"), ConsistentRead=True)["Items"]
    assert not [item for item in records if first["session_id"] in json.dumps(item)]


def test_a_declaration_whose_answer_was_lost_after_its_write_counts_once_on_retry(
    api, conventioned, new_patient, monkeypatch
):
    """The function fails once its transaction is written, before it answers (as a crash or a timeout would):
    the retry under the same key finds the session and answers what the lost answer would have said."""
    from msp.storage import sessions as storage

    _, token = conventioned()
    patient, key = new_patient(), str(uuid.uuid4())
    declared(api, token, body(patient))
    real = storage.transact_write

    def write_then_fail(items):
        real(items)
        raise RuntimeError("the function stopped before answering")

    monkeypatch.setattr(storage, "transact_write", write_then_fail)
    assert api.declare_session(token, body(patient), key).status_code == 500
    monkeypatch.setattr(storage, "transact_write", real)
    assert quota(api, token, patient).json()["used"] == 2
    retried = declared(api, token, body(patient), key)
    assert (retried["used"], retried["remaining"]) == (2, 10)
    assert declared(api, token, body(patient), key) == retried
    assert quota(api, token, patient).json()["used"] == 2


def test_a_cancelled_sessions_key_replays_its_answer_and_declares_nothing(api, conventioned, new_patient):
    _, token = conventioned()
    patient, key = new_patient(), str(uuid.uuid4())
    first = declared(api, token, body(patient), key)
    assert api.call("DELETE", f"/v1/sessions/{first['session_id']}", token=token).status_code == 204
    assert declared(api, token, body(patient), key) == first
    assert quota(api, token, patient).json()["used"] == 0
    assert api.call("DELETE", f"/v1/sessions/{first['session_id']}", token=token).status_code == 404


def test_the_same_key_with_another_body_is_refused(api, conventioned, new_patient):
    _, token = conventioned()
    key = str(uuid.uuid4())
    declared(api, token, body(new_patient()), key)
    other_patient = api.declare_session(token, body(new_patient()), key)
    assert other_patient.status_code == 422
    assert error_of(other_patient)["code"] == "idempotency_key_reused"


def test_a_declaration_needs_an_idempotency_key(api, conventioned, new_patient):
    _, token = conventioned()
    response = api.call("POST", "/v1/sessions", token=token, json=body(new_patient()))
    assert response.status_code == 400
    assert error_of(response)["code"] == "idempotency_key_required"


# --- the quota, the dated policy, the referral and the window (run on chosen days, as make run TODAY=...)


def test_the_quota_is_exhausted_with_a_409_saying_used_and_quota(api, on_day, conventioned, new_patient):
    on_day(dt.date(2023, 3, 2))
    _, token = conventioned()
    patient = new_patient()
    answers = [declared(api, token, referred(patient, "2023-03-01")) for _ in range(8)]
    assert [a["used"] for a in answers] == list(range(1, 9))
    assert [(a["kind"], a["amounts"]["price"]) for a in answers] == [("assessment", "40.00")] + [
        ("follow_up", "30.00")
    ] * 7
    assert answers[-1]["remaining"] == 0
    refused = api.declare_session(token, referred(patient, "2023-03-02"))
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "quota_exhausted"
    assert error["details"] == [{"year": 2023, "used": 8, "quota": 8}]


def test_2024_06_14_follows_the_8_session_rule_and_2024_06_15_the_12_session_rule(
    api, on_day, conventioned, new_patient
):
    on_day(dt.date(2024, 6, 15))
    _, token = conventioned()
    patient = new_patient()
    for day in range(1, 9):
        answer = declared(api, token, referred(patient, f"2024-06-{day:02d}"))
        assert (answer["quota"], answer["used"]) == (8, day)
    before = api.declare_session(token, referred(patient, "2024-06-14"))
    assert before.status_code == 409
    assert error_of(before)["details"] == [{"year": 2024, "used": 8, "quota": 8}]
    after = declared(api, token, body(patient, "2024-06-15"))
    assert after | {"session_id": None} == {
        "session_id": None,
        "year": 2024,
        "used": 9,
        "quota": 12,
        "remaining": 3,
        "kind": "follow_up",
        "ordinal": 9,
        "situation": None,
        "amounts": FULL_PRICE,
    }
    assert quota(api, token, patient, year=2024).json() == {"year": 2024, "used": 9, "quota": 12, "remaining": 3}


def test_the_issues_first_example(api, on_day, conventioned, new_patient):
    """2023-03-10, no situation, the patient's first session of 2023, referral given."""
    on_day(dt.date(2023, 3, 10))
    _, token = conventioned()
    answer = declared(api, token, referred(new_patient(), "2023-03-10"))
    assert (answer["kind"], answer["ordinal"], answer["situation"]) == ("assessment", 1, None)
    assert answer["amounts"] == {
        "price": "40.00",
        "amo": "24.00",
        "amc": "16.00",
        "state": "0.00",
        "patient_advance": "40.00",
    }


def test_the_issues_second_example(api, on_day, conventioned, new_patient):
    """2024-07-01, ALD, the patient's third session of 2024, no referral."""
    on_day(dt.date(2024, 7, 1))
    _, token = conventioned()
    patient = new_patient()
    declared(api, token, referred(patient, "2024-02-01"))
    declared(api, token, body(patient, "2024-06-20"))
    answer = declared(api, token, body(patient, "2024-07-01", situation="ald"))
    assert (answer["kind"], answer["ordinal"], answer["situation"]) == ("follow_up", 3, "ald")
    assert answer["amounts"] == {
        "price": "50.00",
        "amo": "50.00",
        "amc": "0.00",
        "state": "0.00",
        "patient_advance": "0.00",
    }


def test_the_issues_third_example(api, on_day, conventioned, new_patient):
    """2023-05-02 without a referral: 422 naming the referral."""
    on_day(dt.date(2023, 5, 2))
    _, token = conventioned()
    patient = new_patient()
    response = api.declare_session(token, body(patient, "2023-05-02"))
    assert response.status_code == 422
    assert [detail["field"] for detail in error_of(response)["details"]] == ["referral"]
    assert quota(api, token, patient).json()["used"] == 0


def test_only_the_referrals_number_and_date_are_stored(api, stack, on_day, conventioned, new_patient):
    import boto3

    on_day(dt.date(2023, 5, 2))
    _, token = conventioned()
    answer = declared(api, token, referred(new_patient(), "2023-05-02"))
    item = boto3.client("dynamodb", region_name="eu-west-3").get_item(
        TableName=stack.names.table("SessionsTable"),
        Key={"pk": {"S": f"SESSION#{answer['session_id']}"}, "sk": {"S": "SESSION"}},
        ConsistentRead=True,
    )["Item"]
    assert (item["referral_rpps"], item["referral_date"]) == ({"S": "10000000009"}, {"S": "2022-04-05"})
    assert {name for name in item if "referral" in name or "prescriber" in name} == {"referral_rpps", "referral_date"}


def test_a_session_outside_the_convention_is_a_422_naming_the_date(api, on_day, psychologist, new_patient):
    on_day(dt.date(2025, 6, 30))
    sub, token = psychologist
    set_convention(sub, start="2025-03-01")
    patient = new_patient()
    before = api.declare_session(token, body(patient, "2025-02-28"))
    assert before.status_code == 422
    assert error_of(before)["details"] == [
        {"field": "date", "message": "the session is before your convention started on 2025-03-01"}
    ]
    assert declared(api, token, body(patient, "2025-03-01"))["used"] == 1
    set_convention(sub, start="2025-03-01", end="2025-06-15")
    after = api.declare_session(token, body(patient, "2025-06-16"))
    assert after.status_code == 422
    assert [detail["field"] for detail in error_of(after)["details"]] == ["date"]
    assert declared(api, token, body(patient, "2025-06-15"))["used"] == 2


def test_a_year_closes_for_declarations_and_cancellations_after_31_march(api, on_day, conventioned, new_patient):
    on_day(dt.date(2025, 3, 31))
    _, token = conventioned()
    patient = new_patient()
    kept = declared(api, token, body(patient, "2024-12-30"))
    assert declared(api, token, body(patient, "2024-12-31"))["used"] == 2  # the last day the year is open
    on_day(dt.date(2025, 4, 1))
    late = api.declare_session(token, body(patient, "2024-12-31"))
    assert late.status_code == 409
    assert error_of(late)["code"] == "year_closed"
    assert error_of(late)["details"] == [{"year": 2024, "closing_date": "2025-03-31"}]
    cancel = api.call("DELETE", f"/v1/sessions/{kept['session_id']}", token=token)
    assert cancel.status_code == 409 and error_of(cancel)["code"] == "year_closed"
    assert quota(api, token, patient, year=2024).json()["used"] == 2


def test_a_session_of_last_year_can_be_cancelled_until_its_closing_date(api, on_day, conventioned, new_patient):
    on_day(dt.date(2025, 1, 15))
    _, token = conventioned()
    patient = new_patient()
    session = declared(api, token, body(patient, "2024-12-31"))
    response = api.call("DELETE", f"/v1/sessions/{session['session_id']}", token=token)
    assert response.status_code == 204
    assert quota(api, token, patient, year=2024).json()["used"] == 0


def test_cancelling_does_not_reprice_the_other_sessions(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    first = declared(api, token, body(patient))
    second = declared(api, token, body(patient))
    assert api.call("DELETE", f"/v1/sessions/{first['session_id']}", token=token).status_code == 204
    # The second stays a follow-up as answered; the next declaration is the patient's second again.
    third = declared(api, token, body(patient))
    assert (third["kind"], third["ordinal"]) == ("follow_up", 2)
    assert declared(api, token, body(patient), key=None)["ordinal"] == 3
    assert second["kind"] == "follow_up"


# --- looking up a quota


def test_quota_lookup_before_and_after_a_declaration(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    year = programme_today().year
    assert quota(api, token, patient).json() == {"year": year, "used": 0, "quota": 12, "remaining": 12}
    declared(api, token, body(patient))
    assert quota(api, token, patient, year=year).json() == {"year": year, "used": 1, "quota": 12, "remaining": 11}
    assert quota(api, token, patient, year=2023).json() == {"year": 2023, "used": 0, "quota": 8, "remaining": 8}


def test_the_quota_is_no_longer_looked_up_by_get(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    response = api.call("GET", "/v1/sessions/quota", token=token, params=patient)
    assert response.status_code in (404, 405)


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"nir": "290057505612385", "birth_date": "1990-05-14"}, ["nir"]),
        ({"nir": "290057505612384", "birth_date": "1990-06-14"}, ["birth_date"]),
        ({"nir": "290057505612384"}, ["birth_date"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "year": 2099}, ["year"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "year": 2021}, ["year"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "year": "twenty"}, ["year"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "name": "x"}, ["name"]),
    ],
)
def test_bad_quota_lookups_get_a_422_naming_the_field(api, conventioned, fields, problems):
    _, token = conventioned()
    response = api.call("POST", "/v1/sessions/quota", token=token, json=fields)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in error_of(response)["details"]] == problems
    assert "2900575056123" not in response.text


def test_only_conventioned_psychologists_look_up_quotas(api, psychologist, new_patient):
    patient = new_patient()
    _, pending = psychologist
    assert quota(api, pending, patient).status_code == 403
    assert quota(api, api.token("reviewer", departments="*"), patient).status_code == 403
    assert api.call("POST", "/v1/sessions/quota", json=patient).status_code == 401


# --- the access journal and the daily look-up limit


def journal(api, sub: str, **params) -> dict:
    response = api.call("GET", f"/v1/admin/psychologists/{sub}/access-journal", token=api.token("admin"), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_lookups_declarations_and_cancellations_are_journaled_without_the_nir(api, conventioned, new_patient):
    sub, token = conventioned()
    patient = new_patient()
    quota(api, token, patient)
    session = declared(api, token, body(patient))
    api.declare_session(token, body(patient, situation="friend"))  # refused before a transaction
    api.call("DELETE", f"/v1/sessions/{session['session_id']}", token=token)
    page = journal(api, sub)
    assert [(entry["action"], entry["outcome"]) for entry in page["entries"]] == [
        ("cancel", "accepted"),
        ("declare", "refused:invalid_fields"),
        ("declare", "accepted"),
        ("lookup", "accepted"),
    ]
    keys = {entry["patient_key"] for entry in page["entries"]}
    assert len(keys) == 1 and keys.pop().startswith("k")
    assert page["entries"][0]["session_id"] == session["session_id"]
    assert patient["nir"][:13] not in json.dumps(page)


def test_the_journal_pages_with_a_sealed_cursor(api, conventioned, new_patient):
    sub, token = conventioned()
    for _ in range(3):
        quota(api, token, new_patient())
    first = journal(api, sub, limit="2")
    assert len(first["entries"]) == 2 and first["next_cursor"]
    rest = journal(api, sub, limit="2", cursor=first["next_cursor"])
    assert len(rest["entries"]) == 1
    forged = api.call(
        "GET",
        f"/v1/admin/psychologists/{sub}-other/access-journal",
        token=api.token("admin"),
        params={"cursor": first["next_cursor"]},
    )
    assert forged.status_code == 400


def test_only_admins_read_the_journal(api, conventioned):
    sub, token = conventioned()
    path = f"/v1/admin/psychologists/{sub}/access-journal"
    assert api.call("GET", path, token=token).status_code == 403
    assert api.call("GET", path, token=api.token("reviewer", departments="*")).status_code == 403
    assert api.call("GET", path).status_code == 401


def test_more_distinct_patients_than_the_daily_limit_is_a_429_journaled_too(api, conventioned, new_patient):
    sub, token = conventioned()
    patients = [new_patient() for _ in range(100)]
    for patient in patients:
        assert quota(api, token, patient).status_code == 200
    # The same patients again are not new ones.
    assert quota(api, token, patients[0]).status_code == 200
    refused = quota(api, token, new_patient())
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "lookup_limit_reached"
    assert 0 < int(refused.headers["Retry-After"]) <= 25 * 3600
    assert journal(api, sub, limit="1")["entries"][0]["outcome"] == "refused:lookup_limit_reached"
    # Another psychologist has their own count.
    _, colleague = conventioned()
    assert quota(api, colleague, new_patient()).status_code == 200


# --- cancelling


def test_cancelling_gives_the_session_back_to_the_patient(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    kept = declared(api, token, body(patient))
    cancelled = declared(api, token, body(patient))
    assert cancelled["used"] == 2
    response = api.call("DELETE", f"/v1/sessions/{cancelled['session_id']}", token=token)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert quota(api, token, patient).json()["used"] == 1
    again = api.call("DELETE", f"/v1/sessions/{cancelled['session_id']}", token=token)
    assert again.status_code == 404
    assert quota(api, token, patient).json()["used"] == 1
    assert declared(api, token, body(patient))["used"] == 2
    assert kept["used"] == 1


def test_only_the_declaring_psychologist_cancels(api, conventioned, new_patient):
    _, token = conventioned()
    _, colleague = conventioned()
    patient = new_patient()
    session = declared(api, token, body(patient))
    response = api.call("DELETE", f"/v1/sessions/{session['session_id']}", token=colleague)
    assert response.status_code == 404
    assert quota(api, token, patient).json()["used"] == 1


def test_a_deconventioned_psychologist_cannot_cancel(api, conventioned, new_patient):
    sub, token = conventioned()
    patient = new_patient()
    session = declared(api, token, body(patient))
    set_convention(sub, "deconventioned")
    response = api.call("DELETE", f"/v1/sessions/{session['session_id']}", token=token)
    assert response.status_code == 403
    set_convention(sub, "accepted")
    assert quota(api, token, patient).json()["used"] == 1


@pytest.mark.parametrize("session_id", ["not-a-uuid", str(uuid.uuid4())])
def test_cancelling_an_unknown_session_is_a_404(api, conventioned, session_id):
    _, token = conventioned()
    response = api.call("DELETE", f"/v1/sessions/{session_id}", token=token)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
