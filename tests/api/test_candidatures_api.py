"""Candidature routes through the local gateway (JWT check, payload 2.0) on DynamoDB Local."""

from __future__ import annotations

import uuid

import pytest


def _create(api, token, fields, key=None):
    response = api.create_candidature(token, fields, key)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_a_draft_with_the_submitted_fields(api, psychologist, unique_fields):
    _, token = psychologist
    fields = unique_fields()
    body = _create(api, token, fields)
    assert body["status"] == "draft" and body["version"] == 1 and body["documents"] == []
    assert body["first_name"] == fields["first_name"] and body["practices"][0]["department"] == "75"
    assert body["identifier"] == fields["identifier"]
    assert api.call("GET", f"/v1/candidatures/{body['id']}", token=token).json() == body


def test_same_idempotency_key_and_body_replays_without_a_second_record(api, psychologist, unique_fields):
    _, token = psychologist
    fields, key = unique_fields(), str(uuid.uuid4())
    first = api.create_candidature(token, fields, key)
    replay = api.create_candidature(token, fields, key)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    # a second record would have taken the identifier lock a second time: a new key proves only one exists
    third = api.create_candidature(token, fields, str(uuid.uuid4()))
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "identifier_in_use"
    assert "draft" in third.json()["error"]["message"]


def test_same_idempotency_key_with_another_body_is_refused(api, psychologist, unique_fields):
    _, token = psychologist
    key = str(uuid.uuid4())
    assert api.create_candidature(token, unique_fields(), key).status_code == 201
    other = api.create_candidature(token, unique_fields(first_name="Autre"), key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_idempotency_keys_are_per_caller(api, unique_fields):
    key = str(uuid.uuid4())
    first = api.create_candidature(api.token("psychologist", sub="psy-a-" + key[:8]), unique_fields(), key)
    second = api.create_candidature(api.token("psychologist", sub="psy-b-" + key[:8]), unique_fields(), key)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_missing_idempotency_key_is_a_clear_400(api, psychologist, unique_fields):
    _, token = psychologist
    response = api.call("POST", "/v1/candidatures", token=token, json=unique_fields())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


def test_routes_need_a_valid_token(api, psychologist, unique_fields, stack, tmp_path):
    from infra.dev_issuer import DevIssuer

    response = api.call("POST", "/v1/candidatures", json=unique_fields(), headers={"Idempotency-Key": "k" * 10})
    assert response.status_code == 401
    forged = DevIssuer(tmp_path).mint("psychologist")
    assert api.call("GET", f"/v1/candidatures/{uuid.uuid4()}", token=forged).status_code == 401


def test_reviewers_and_admins_cannot_create_candidatures(api, unique_fields):
    for token in (api.token("reviewer", departments="75"), api.token("admin")):
        response = api.create_candidature(token, unique_fields())
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


def test_a_psychologist_cannot_see_or_touch_anothers_candidature(api, psychologist, unique_fields):
    _, owner = psychologist
    body = _create(api, owner, unique_fields())
    intruder = api.token("psychologist", sub="intruder-" + uuid.uuid4().hex[:6])
    path = f"/v1/candidatures/{body['id']}"
    assert api.call("GET", path, token=intruder).status_code == 404
    assert (
        api.call("PATCH", path, token=intruder, json={"experience_years": 1}, headers={"If-Match": "1"}).status_code
        == 404
    )
    assert api.call("POST", f"{path}/withdraw", token=intruder).status_code == 404
    assert (
        api.call(
            "POST",
            f"{path}/documents",
            token=intruder,
            json={"kind": "diploma", "content_type": "application/pdf", "size": 10},
        ).status_code
        == 404
    )
    assert api.call("GET", path, token=owner).json()["status"] == "draft"


def test_patch_needs_the_current_version(api, psychologist, unique_fields):
    _, token = psychologist
    body = _create(api, token, unique_fields())
    path = f"/v1/candidatures/{body['id']}"
    assert api.call("PATCH", path, token=token, json={"experience_years": 9}).status_code == 428
    updated = api.call("PATCH", path, token=token, json={"experience_years": 9}, headers={"If-Match": "1"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["experience_years"] == 9 and updated.json()["version"] == 2
    assert updated.json()["first_name"] == body["first_name"]
    stale = api.call("PATCH", path, token=token, json={"experience_years": 10}, headers={"If-Match": "1"})
    assert stale.status_code == 412
    assert api.call("GET", path, token=token).json()["experience_years"] == 9


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ('W/"1"', 200),  # the ETag as a cache sends it back
        ('"2"', 412),
        ('""', 428),
        ("1.0", 400),
        ("1234567890", 400),  # versions have at most 9 digits, as the document's pattern says
        ("\u00b3", 400),  # a superscript 3: a digit to str.isdigit, no number to int(); ASCII digits only
    ],
)
def test_if_match_takes_the_version_as_the_document_describes_it(api, psychologist, unique_fields, if_match, status):
    _, token = psychologist
    path = f"/v1/candidatures/{_create(api, token, unique_fields())['id']}"
    answer = api.call("PATCH", path, token=token, json={"experience_years": 3}, headers={"If-Match": if_match})
    assert answer.status_code == status, answer.text


def test_patch_can_clear_a_field_and_move_the_identifier(api, psychologist, unique_fields):
    _, token = psychologist
    old = unique_fields()
    body = _create(api, token, old)
    new_identifier = unique_fields()["identifier"]
    response = api.call(
        "PATCH",
        f"/v1/candidatures/{body['id']}",
        token=token,
        headers={"If-Match": "1"},
        json={"website": None, "identifier": new_identifier},
    )
    assert response.status_code == 200, response.text
    assert "website" not in response.json() and response.json()["identifier"] == new_identifier
    # the old number is free again, the new one is taken
    assert api.create_candidature(token, old).status_code == 201
    assert api.create_candidature(token, unique_fields(identifier=new_identifier)).status_code == 409


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
        ({"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}}, 422, "validation_error"),
        (
            {"data": b"civility=mme", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            415,
            "unsupported_media_type",
        ),
        (
            {"data": b'{"civility": "mme", "pet": "cat"}', "headers": {"Content-Type": "application/json"}},
            422,
            "validation_error",
        ),
        (
            {"data": b'{"experience_years": [8]}', "headers": {"Content-Type": "application/json"}},
            422,
            "validation_error",
        ),
        (
            {"data": b'{"first_name": "' + b"a" * 70000 + b'"}', "headers": {"Content-Type": "application/json"}},
            413,
            "payload_too_large",
        ),
    ],
)
def test_bad_input_gets_a_4xx_in_the_error_shape_and_writes_nothing(api, psychologist, send, status, code):
    _, token = psychologist
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), **send["headers"]}
    response = api.session.post(f"{api.base_url}/v1/candidatures", data=send["data"], headers=headers, timeout=10)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert set(error) == {"code", "message", "details"}


def test_validation_errors_name_the_field_path(api, psychologist, unique_fields):
    _, token = psychologist
    fields = unique_fields()
    fields["practices"][0]["department"] = "99"
    fields["identifier"]["value"] = "10001234566"
    response = api.create_candidature(token, fields)
    assert response.status_code == 422
    paths = {d["field"] for d in response.json()["error"]["details"]}
    assert {"practices.0.department", "identifier"} <= paths


def test_submit_lists_what_is_missing_and_changes_nothing(api, psychologist):
    _, token = psychologist
    body = _create(api, token, {"first_name": "Camille"})
    response = api.call("POST", f"/v1/candidatures/{body['id']}/submit", token=token)
    assert response.status_code == 422
    missing = {d["field"] for d in response.json()["error"]["details"]}
    assert {
        "identifier",
        "practices",
        "documents.diploma",
        "documents.identity",
        "documents.identifier_proof",
    } <= missing
    assert api.call("GET", f"/v1/candidatures/{body['id']}", token=token).json()["version"] == 1


def test_withdraw_frees_the_identifier_and_is_final(api, psychologist, unique_fields):
    _, token = psychologist
    fields = unique_fields()
    body = _create(api, token, fields)
    withdrawn = api.call("POST", f"/v1/candidatures/{body['id']}/withdraw", token=token)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = api.call("POST", f"/v1/candidatures/{body['id']}/withdraw", token=token)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    patch = api.call(
        "PATCH",
        f"/v1/candidatures/{body['id']}",
        token=token,
        json={"city": "Lyon"},
        headers={"If-Match": str(withdrawn.json()["version"])},
    )
    assert patch.status_code in {409, 422}
    assert api.create_candidature(token, fields).status_code == 201


def test_document_request_is_validated(api, psychologist, unique_fields):
    _, token = psychologist
    body = _create(api, token, unique_fields())
    path = f"/v1/candidatures/{body['id']}/documents"
    for bad in (
        {"kind": "passport", "content_type": "application/pdf", "size": 10},
        {"kind": "diploma", "content_type": "application/zip", "size": 10},
        {"kind": "diploma", "content_type": "application/pdf", "size": 10 * 1024 * 1024 + 1},
        {"kind": "diploma", "content_type": "application/pdf", "size": 0},
    ):
        response = api.call("POST", path, token=token, json=bad)
        assert response.status_code == 422, bad
    assert api.call("GET", f"/v1/candidatures/{body['id']}", token=token).json()["documents"] == []
