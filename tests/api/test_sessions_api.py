"""Session routes through the local gateway (JWT check, payload 2.0) on DynamoDB Local."""

from __future__ import annotations

import json
import uuid

import pytest

from msp.clock import programme_today
from tests.conftest import set_convention

TODAY = programme_today().isoformat()
FULL_PRICE = {"price": "50.00", "amo": "30.00", "amc": "20.00", "patient_advance": "50.00"}


def body(patient: dict, date: str = TODAY, **changes) -> dict:
    return {"patient": patient, "date": date, "first_session": False, "tiers_payant_reason": None} | changes


def declared(api, token, payload, key=None) -> dict:
    response = api.declare_session(token, payload, key)
    assert response.status_code == 201, response.text
    return response.json()


def quota(api, token, patient, **params):
    query = {"nir": patient["nir"], "birth_date": patient["birth_date"], **params}
    return api.call("GET", "/v1/sessions/quota", token=token, params=query)


def error_of(response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


# --- declaring


def test_a_declaration_answers_the_contract_shape(api, conventioned, new_patient):
    _, token = conventioned()
    answer = declared(api, token, body(new_patient()))
    assert set(answer) == {"session_id", "year", "used", "quota", "remaining", "amounts"}
    uuid.UUID(answer["session_id"])
    assert answer | {"session_id": None} == {
        "session_id": None,
        "year": programme_today().year,
        "used": 1,
        "quota": 12,
        "remaining": 11,
        "amounts": FULL_PRICE,
    }


def test_the_contract_example_body_is_accepted(api, conventioned):
    _, token = conventioned()
    contract = {
        "patient": {"nir": "290057505612384", "birth_date": "1990-05-14"},
        "date": "2026-11-20",
        "first_session": False,
        "tiers_payant_reason": None,
    }
    response = api.declare_session(token, contract)
    assert response.status_code in (201, 409), response.text  # the example patient is shared by every run
    if response.status_code == 201:
        assert response.json()["amounts"] == FULL_PRICE


def test_counts_go_up_per_patient_and_tiers_payant_means_no_advance(api, conventioned, new_patient):
    _, token = conventioned()
    patient, other = new_patient(), new_patient()
    assert declared(api, token, body(patient))["used"] == 1
    second = declared(api, token, body(patient, tiers_payant_reason="css"))
    assert (second["used"], second["remaining"]) == (2, 10)
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
        ({"date": "2023-03-01", "first_session": None}, ["first_session"]),
        ({"tiers_payant_reason": "friend"}, ["tiers_payant_reason"]),
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
    answered = api.declare_session(token, body(patient, tiers_payant_reason="css"), key)
    assert answered.status_code == 201, answered.text
    declared(api, token, body(patient))
    declared(api, token, body(patient))
    replay = api.declare_session(token, body(patient, tiers_payant_reason="css"), key)
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


# --- the quota and the dated policy


def test_the_quota_is_exhausted_with_a_409_saying_used_and_quota(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    answers = [declared(api, token, body(patient, "2023-03-01", first_session=n == 0)) for n in range(8)]
    assert [a["used"] for a in answers] == list(range(1, 9))
    assert [a["amounts"]["price"] for a in answers] == ["40.00"] + ["30.00"] * 7
    assert answers[-1]["remaining"] == 0
    refused = api.declare_session(token, body(patient, "2023-03-02"))
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "quota_exhausted"
    assert error["details"] == [{"year": 2023, "used": 8, "quota": 8}]
    other_year = declared(api, token, body(patient, "2024-01-10"))
    assert (other_year["year"], other_year["used"]) == (2024, 1)


def test_2024_06_14_follows_the_8_session_rule_and_2024_06_15_the_12_session_rule(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    for day in range(1, 9):
        answer = declared(api, token, body(patient, f"2024-06-{day:02d}", first_session=day == 1))
        assert (answer["quota"], answer["used"]) == (8, day)
    before = api.declare_session(token, body(patient, "2024-06-14"))
    assert before.status_code == 409
    assert error_of(before)["details"] == [{"year": 2024, "used": 8, "quota": 8}]
    after = declared(api, token, body(patient, "2024-06-15", first_session=None))
    assert after | {"session_id": None} == {
        "session_id": None,
        "year": 2024,
        "used": 9,
        "quota": 12,
        "remaining": 3,
        "amounts": FULL_PRICE,
    }
    assert quota(api, token, patient, year="2024").json() == {"year": 2024, "used": 9, "quota": 12, "remaining": 3}


def test_first_period_amounts_through_the_api(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    first = declared(api, token, body(patient, "2024-06-14", first_session=True, tiers_payant_reason="ald"))
    assert first["amounts"] == {"price": "40.00", "amo": "24.00", "amc": "16.00", "patient_advance": "0.00"}
    follow = declared(api, token, body(patient, "2024-06-14"))
    assert follow["amounts"] == {"price": "30.00", "amo": "18.00", "amc": "12.00", "patient_advance": "30.00"}


# --- looking up a quota


def test_quota_lookup_before_and_after_a_declaration(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    year = programme_today().year
    assert quota(api, token, patient).json() == {"year": year, "used": 0, "quota": 12, "remaining": 12}
    declared(api, token, body(patient))
    assert quota(api, token, patient, year=str(year)).json() == {"year": year, "used": 1, "quota": 12, "remaining": 11}
    assert quota(api, token, patient, year="2023").json() == {"year": 2023, "used": 0, "quota": 8, "remaining": 8}


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"nir": "290057505612385", "birth_date": "1990-05-14"}, ["nir"]),
        ({"nir": "290057505612384", "birth_date": "1990-06-14"}, ["birth_date"]),
        ({"nir": "290057505612384"}, ["birth_date"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "year": "2099"}, ["year"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "year": "2021"}, ["year"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "year": "twenty"}, ["year"]),
        ({"nir": "290057505612384", "birth_date": "1990-05-14", "name": "x"}, ["name"]),
    ],
)
def test_bad_quota_lookups_get_a_422_naming_the_parameter(api, conventioned, params, fields):
    _, token = conventioned()
    response = api.call("GET", "/v1/sessions/quota", token=token, params=params)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in error_of(response)["details"]] == fields
    assert "2900575056123" not in response.text


def test_only_conventioned_psychologists_look_up_quotas(api, psychologist, new_patient):
    patient = new_patient()
    _, pending = psychologist
    assert quota(api, pending, patient).status_code == 403
    assert quota(api, api.token("reviewer", departments="*"), patient).status_code == 403
    assert api.call("GET", "/v1/sessions/quota", params={"nir": patient["nir"]}).status_code == 401


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


def test_a_session_of_a_past_year_cannot_be_cancelled(api, conventioned, new_patient):
    _, token = conventioned()
    patient = new_patient()
    session = declared(api, token, body(patient, "2025-12-31"))
    response = api.call("DELETE", f"/v1/sessions/{session['session_id']}", token=token)
    assert response.status_code == 409
    assert error_of(response)["code"] == "session_not_cancellable"
    assert quota(api, token, patient, year="2025").json()["used"] == 1


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
