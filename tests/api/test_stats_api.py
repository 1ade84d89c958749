"""GET /v1/stats through the local gateway, on a tally the job wrote: the contract's shape and who sees what."""

from __future__ import annotations

import json

import boto3
import pytest

from infra.synthetic import load_year, plan_year
from msp.clock import programme_today

YEAR = 2025
CONTRACT = {
    "department",
    "sessions",
    "patients",
    "psychologists",
    "amount_total",
    "amount_amo",
    "amount_amc",
    "patients_at_quota",
}


@pytest.fixture(scope="module")
def summary(stack, tally_storage):
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    load_year(session_year_store(), plan_year(YEAR, 300, seed=11, tag="stats"), patient_keyring())
    outcome = stack.runtime.invoke("TallySessionsFunction", {"year": YEAR, "run_id": "stats"})
    assert outcome["status"] == "complete", outcome
    body = boto3.client("s3", region_name="eu-west-3").get_object(
        Bucket=tally_storage["bucket"], Key=f"reports/{YEAR}/stats/summary.json"
    )["Body"]
    return json.loads(body.read())


def stats(api, token, **params):
    return api.call("GET", "/v1/stats", token=token, params=params)


def test_an_admin_gets_every_department_in_the_contracts_shape(api, summary):
    response = stats(api, api.token("admin"), year=YEAR)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {"year", "generated_at", "departments"} <= set(answer)
    assert answer["year"] == YEAR and answer["generated_at"] == summary["generated_at"]
    assert answer["departments"] and all(set(row) >= CONTRACT for row in answer["departments"])
    assert answer["departments"] == summary["departments"]
    paris = next(row for row in answer["departments"] if row["department"] == "75")
    assert paris["sessions"] > 0 and paris["amount_total"].count(".") == 1


def test_a_reviewer_sees_their_departments_only(api, summary):
    token = api.token("reviewer", departments="75,92,976")
    answer = stats(api, token, year=YEAR).json()
    rows = {row["department"]: row for row in answer["departments"]}
    assert list(rows) == ["75", "92", "976"]
    expected = {row["department"]: row for row in summary["departments"]}
    assert {key: rows["75"][key] for key in CONTRACT} == {key: expected["75"][key] for key in CONTRACT}
    assert rows["976"]["sessions"] == 0 and rows["976"]["amount_total"] == "0.00"  # no session there
    one = stats(api, token, year=YEAR, department="92").json()["departments"]
    assert [row["department"] for row in one] == ["92"]


def test_a_department_outside_the_reviewers_scope_is_404(api, summary):
    response = stats(api, api.token("reviewer", departments="75"), year=YEAR, department="13")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "department_not_in_scope"


def test_psychologists_get_403_and_anonymous_callers_401(api, summary):
    assert stats(api, api.token("psychologist"), year=YEAR).status_code == 403
    assert stats(api, None, year=YEAR).status_code == 401


def test_a_year_without_a_tally_is_a_clear_404(api, summary):
    response = stats(api, api.token("admin"), year=2023)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "no_tally" and "2023" in error["message"]


@pytest.mark.parametrize("params", [{"department": "99"}, {"year": "last"}, {"year": "2025", "region": "idf"}])
def test_bad_parameters_are_422(api, summary, params):
    response = stats(api, api.token("admin"), **params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]


def test_without_a_year_the_route_serves_this_years_nightly_tally(stack, api, tally_storage):
    outcome = stack.runtime.invoke("TallySessionsFunction", {"kind": "nightly"})
    assert outcome["status"] == "complete" and outcome["run_id"] == f"nightly-{programme_today().isoformat()}"
    answer = stats(api, api.token("admin")).json()
    assert answer["year"] == programme_today().year and answer["run_id"] == outcome["run_id"]
