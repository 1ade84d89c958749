"""POST /v1/admin/conventions: conventions granted before this service, recorded as accepted candidatures."""

from __future__ import annotations

import datetime as dt
import uuid

REFERRAL = {"prescriber_rpps": "10000000009", "date": "2023-01-02"}


ADMIN_SUB = "admin-importer"


def imported(api, unique_fields, **changes):
    body = unique_fields() | {"owner_sub": f"psy-{uuid.uuid4().hex[:10]}", "convention_start": "2023-01-10"} | changes
    key = str(uuid.uuid4())
    admin = api.token("admin", sub=ADMIN_SUB)
    response = api.call("POST", "/v1/admin/conventions", token=admin, json=body, headers={"Idempotency-Key": key})
    return body, key, response


def test_an_imported_convention_is_an_accepted_listed_candidature_with_an_imported_event(api, unique_fields):
    body, _, response = imported(api, unique_fields)
    assert response.status_code == 201, response.text
    candidature = response.json()
    assert candidature["status"] == "accepted" and candidature["documents"] == []
    owner = api.token("psychologist", sub=body["owner_sub"])
    assert api.call("GET", f"/v1/candidatures/{candidature['id']}", token=owner).status_code == 200
    assert response.headers["Location"] == f"/v1/candidatures/{candidature['id']}"
    history = api.call("GET", f"/v1/candidatures/{candidature['id']}/history", token=api.token("admin")).json()
    assert [(event["action"], event["to_status"]) for event in history["events"]] == [("imported", "accepted")]
    profile = api.call("GET", f"/v1/psychologists/{candidature['id']}")
    assert profile.status_code == 200, profile.text


def test_the_imported_psychologist_declares_from_the_convention_start(api, on_day, unique_fields, new_patient):
    on_day(dt.date(2023, 3, 1))
    body, _, response = imported(api, unique_fields, convention_start="2023-01-10")
    assert response.status_code == 201, response.text
    token = api.token("psychologist", sub=body["owner_sub"])
    patient = new_patient()
    before = api.declare_session(token, {"patient": patient, "date": "2023-01-09", "referral": REFERRAL})
    assert before.status_code == 422
    assert [detail["field"] for detail in before.json()["error"]["details"]] == ["date"]
    first = api.declare_session(token, {"patient": patient, "date": "2023-01-10", "referral": REFERRAL})
    assert first.status_code == 201, first.text
    assert first.json()["kind"] == "assessment"


def test_a_replay_answers_the_same_and_another_import_of_the_identifier_is_a_409(api, unique_fields):
    body, key, first = imported(api, unique_fields)
    admin = api.token("admin", sub=ADMIN_SUB)
    again = api.call("POST", "/v1/admin/conventions", token=admin, json=body, headers={"Idempotency-Key": key})
    assert (again.status_code, again.json()) == (201, first.json()), again.text
    other = api.call(
        "POST",
        "/v1/admin/conventions",
        token=admin,
        json=body | {"owner_sub": f"psy-{uuid.uuid4().hex[:10]}"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert other.status_code == 409 and other.json()["error"]["code"] == "identifier_in_use"


def test_a_psychologist_with_a_candidature_holding_the_identifier_blocks_the_import(api, unique_fields, psychologist):
    _, token = psychologist
    fields = unique_fields()
    assert api.create_candidature(token, fields).status_code == 201
    _, _, response = imported(api, unique_fields, identifier=fields["identifier"])
    assert response.status_code == 409 and response.json()["error"]["code"] == "identifier_in_use"


def test_bad_imports_get_a_422_naming_the_field(api, unique_fields):
    today = dt.date.today()
    cases = [
        ({"convention_start": "2022-04-04"}, ["convention_start"]),
        ({"convention_start": (today + dt.timedelta(days=2)).isoformat()}, ["convention_start"]),
        ({"convention_start": None}, ["convention_start"]),
        ({"phone": None}, ["phone"]),
        ({"owner_sub": "a b"}, ["owner_sub"]),
        ({"status": "accepted"}, ["status"]),
    ]
    for change, fields in cases:
        _, _, response = imported(api, unique_fields, **change)
        assert response.status_code == 422, (change, response.text)
        assert [detail["field"] for detail in response.json()["error"]["details"]] == fields, change
