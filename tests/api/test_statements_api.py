"""Statements and the personal data export through the local gateway: the caller's sessions of a month with a
pseudonymous patient reference (stable for one psychologist, different for another, never the NIR or the patient
key), the month's totals as JSON and as a French CSV, and everything held about the caller as one document."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import requests

from infra.api_client import SAMPLE_PDF
from msp.clock import programme_today


def _declare(api, token, patient) -> dict:
    body = {"patient": patient, "date": programme_today().isoformat()}
    response = api.declare_session(token, body)
    assert response.status_code == 201, response.text
    return response.json()


def _month() -> dict[str, str]:
    today = programme_today()
    return {"year": str(today.year), "month": str(today.month)}


def test_the_statement_lists_the_month_with_stable_pseudonymous_references(api, conventioned, new_patient):
    _, mine = conventioned()
    _, theirs = conventioned()
    first, second, third = new_patient(), new_patient(), new_patient()
    declared = [_declare(api, mine, first), _declare(api, mine, first), _declare(api, mine, second)]
    kept = _declare(api, mine, third)
    assert api.call("DELETE", f"/v1/sessions/{declared[2]['session_id']}", token=mine).status_code == 204
    _declare(api, theirs, first)

    pages, cursor = [], None
    while True:
        params = _month() | {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        response = api.call("GET", "/v1/sessions", token=mine, params=params)
        assert response.status_code == 200, response.text
        for nir in (first["nir"], second["nir"], third["nir"]):
            assert nir not in response.text
        assert "patient_key" not in response.text and "k1:" not in response.text
        pages.append(response.json()["sessions"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [3, 1]
    lines = {line["session_id"]: line for page in pages for line in page}
    assert set(lines) == {d["session_id"] for d in declared} | {kept["session_id"]}
    one, two, cancelled = (lines[d["session_id"]] for d in declared)
    assert one["patient_reference"] == two["patient_reference"] != lines[kept["session_id"]]["patient_reference"]
    assert one["patient_reference"].startswith("P-") and len(one["patient_reference"]) == 14
    assert cancelled["cancelled"] is True and cancelled["patient_reference"] is None
    assert one["amounts"]["price"] == declared[0]["amounts"]["price"]

    (their_line,) = api.call("GET", "/v1/sessions", token=theirs, params=_month()).json()["sessions"]
    assert their_line["patient_reference"] != one["patient_reference"]  # not linkable across psychologists

    tampered = api.call("GET", "/v1/sessions", token=mine, params=_month() | {"cursor": "abc.def"})
    assert tampered.status_code == 400 and tampered.json()["error"]["code"] == "invalid_cursor"
    first_page = api.call("GET", "/v1/sessions", token=mine, params=_month() | {"limit": "1"}).json()
    borrowed = api.call("GET", "/v1/sessions", token=theirs, params=_month() | {"cursor": first_page["next_cursor"]})
    assert borrowed.status_code == 400  # a cursor is bound to its caller and month
    assert api.call("GET", "/v1/sessions", token=mine, params={"year": "2026", "month": "13"}).status_code == 422


def test_the_month_statement_as_json_and_as_a_french_csv(api, conventioned, new_patient):
    _, token = conventioned()
    declared = [_declare(api, token, new_patient()) for _ in range(3)]
    assert api.call("DELETE", f"/v1/sessions/{declared[0]['session_id']}", token=token).status_code == 204

    statement = api.call("GET", "/v1/sessions/statement", token=token, params=_month())
    assert statement.status_code == 200, statement.text
    body = statement.json()
    assert body["sessions"] == 2 and body["cancelled"] == 1
    counted = declared[1:]
    assert Decimal(body["total_price"]) == sum(Decimal(d["amounts"]["price"]) for d in counted)
    payers = {total["payer"]: Decimal(total["amount"]) for total in body["payers"]}
    assert payers["amo"] == sum(Decimal(d["amounts"]["amo"]) for d in counted)
    assert payers["amc"] == sum(Decimal(d["amounts"]["amc"]) for d in counted)

    sheet = api.call("GET", "/v1/sessions/statement", token=token, params=_month(), headers={"Accept": "text/csv"})
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert "attachment" in sheet.headers["content-disposition"]
    raw = sheet.content.decode("utf-8")
    assert raw.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(raw.removeprefix("\ufeff")), delimiter=";"))
    assert rows[0] == ["Mois", "Payeur", "Montant (€)"]
    by_label = {row[1]: row[2] for row in rows[1:]}
    assert by_label["Assurance Maladie (AMO)"] == str(payers["amo"]).replace(".", ",")
    assert by_label["Nombre de séances"] == "2"
    assert "," in by_label["Total des séances"] and "." not in by_label["Total des séances"]

    reviewer = api.token("reviewer", departments="75")
    assert api.call("GET", "/v1/sessions/statement", token=reviewer, params=_month()).status_code == 403
    assert api.call("GET", "/v1/sessions/statement", params=_month()).status_code == 401


def test_the_export_holds_everything_about_the_caller_and_nothing_of_anyone_else(
    api, conventioned, make_candidature, new_patient
):
    sub, token = conventioned()
    candidature = make_candidature(owner_sub=sub, files=True)
    other = make_candidature(files=True)
    patient = new_patient()
    session = _declare(api, token, patient)

    exported = api.call("GET", "/v1/me/export", token=token)
    assert exported.status_code == 200, exported.text
    assert "attachment" in exported.headers["content-disposition"]
    document = exported.json()
    assert document["sub"] == sub and document["convention"]["status"] == "accepted"
    (mine,) = document["candidatures"]
    assert mine["id"] == candidature.id and mine["email"] == candidature.fields.email
    assert [event["action"] for event in mine["history"]] == ["fixture"]
    assert len(mine["documents"]) == 3
    for entry in mine["documents"]:
        assert entry["download_expires_in"] <= 300
        downloaded = requests.get(entry["download_url"], timeout=10)
        assert downloaded.status_code == 200 and downloaded.content == SAMPLE_PDF
    (line,) = document["sessions"]
    assert line["session_id"] == session["session_id"] and line["patient_reference"].startswith("P-")
    assert patient["nir"] not in exported.text
    assert other.id not in exported.text

    assert api.call("GET", "/v1/me/export", token=api.token("reviewer", departments="75")).status_code == 403
    assert api.call("GET", "/v1/me/export").status_code == 401
