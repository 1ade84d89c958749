"""GET /v1/public/stats through the local gateway, on a final tally the job wrote: public, cached an hour, every
closed month per department, and no count under 11 ever shown exactly.
"""

from __future__ import annotations

from collections import Counter

import pytest

from infra.synthetic import load_year, plan_year
from msp.geography import DEPARTMENTS

YEAR = 2024


@pytest.fixture(scope="module")
def truth(stack, tally_storage):
    """Sessions per (department, month) of a year the tally then closed (final: every month is closed)."""
    from msp.storage.secrets import patient_keyring
    from msp.storage.session_years import session_year_store

    plan = plan_year(YEAR, 1500, seed=7, tag="open", unknown_department=True)
    load_year(session_year_store(), plan, patient_keyring())
    outcome = stack.runtime.invoke("TallySessionsFunction", {"year": YEAR, "run_id": "open", "final": True})
    assert outcome["status"] == "complete", outcome
    cells = Counter((plan.psychologists[s.psychologist], s.date.isoformat()[:7]) for s in plan.sessions)
    pairs = {(plan.psychologists[s.psychologist], s.psychologist) for s in plan.sessions}
    return cells, Counter(department for department, _ in pairs)


def _ints(document) -> list[int]:
    if isinstance(document, dict):
        return [n for key, value in document.items() if key not in {"year", "threshold"} for n in _ints(value)]
    if isinstance(document, list):
        return [n for value in document for n in _ints(value)]
    return [document] if isinstance(document, int) and not isinstance(document, bool) else []


def test_anyone_reads_every_closed_month_per_department_with_small_counts_suppressed(api, truth):
    cells, _ = truth
    response = api.call("GET", "/v1/public/stats", params={"year": str(YEAR)})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=3600"
    answer = response.json()
    assert answer["year"] == YEAR and answer["final"] is True and answer["threshold"] == 11
    months = [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    assert answer["closed_months"] == months
    assert {row["department"] for row in answer["departments"]} == DEPARTMENTS

    for row in answer["departments"]:
        assert [m["month"] for m in row["months"]] == months
        for shown in row["months"]:
            exact = cells.get((row["department"], shown["month"]), 0)
            if exact < 11:
                assert shown["sessions"] == "< 11", (row["department"], shown, exact)
            else:
                assert shown["sessions"] in (exact, "secret")
    for shown in answer["months"]:
        national = sum(count for (department, month), count in cells.items() if department and month == shown["month"])
        assert shown["sessions"] in (national, "secret")
    # Departments with a handful of sessions are in the data, and never shown under 11 anywhere.
    assert any(0 < count < 11 for (department, _), count in cells.items() if department)
    assert all(number >= 11 for number in _ints(answer))


def test_psychologists_per_department_are_shown_from_11(api, truth):
    _, psychologists = truth
    rows = {row["department"]: row for row in api.call("GET", f"/v1/public/stats?year={YEAR}").json()["departments"]}
    for department, row in rows.items():
        count = psychologists.get(department, 0)
        assert row["psychologists"] == (count if count >= 11 else "< 11"), department


def test_a_year_without_a_tally_is_a_clear_404_not_cached(api, truth):
    response = api.call("GET", "/v1/public/stats", params={"year": "2023"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_tally"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("params", [{"year": "last"}, {"year": "1999"}, {"year": "2024", "department": "75"}])
def test_bad_parameters_are_422(api, params):
    response = api.call("GET", "/v1/public/stats", params=params)
    assert response.status_code == 422, response.text
