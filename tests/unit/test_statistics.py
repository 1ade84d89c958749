"""GET /v1/stats's use case on a fake report store: who sees which departments."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from msp.auth import Caller, Role
from msp.errors import NotFound, RoleNotAllowed
from msp.http_errors import answer_for
from msp.tally.statistics import StatsQuery, read_statistics

TODAY = dt.date(2026, 11, 20)


def row(department, sessions):
    return {
        "department": department,
        "sessions": sessions,
        "patients": sessions,
        "psychologists": 1,
        "amount_total": f"{50 * sessions}.00",
        "amount_amo": f"{30 * sessions}.00",
        "amount_amc": f"{20 * sessions}.00",
        "amount_patient_advance": "0.00",
        "tiers_payant_sessions": 0,
        "amount_tiers_payant": "0.00",
        "patients_at_quota": 0,
        "patients_one_left": 0,
    }


class FakeReports:
    def __init__(self, years=(2026,)):
        self.years = years

    def latest(self, year):
        return {"summary": f"reports/{year}/r/summary.json"} if year in self.years else None

    def read_json(self, key):
        year = int(key.split("/")[1])
        return {
            "year": year,
            "run_id": "r",
            "as_of": f"{year}-11-20",
            "final": False,
            "quota": 12,
            "generated_at": "2026-11-20T01:31:00.000000Z",
            "departments": [row("13", 3), row("2A", 2), row("75", 5), row(None, 1)],
        }


def caller(role: Role, departments=()) -> Caller:
    return Caller(sub="u1", roles=frozenset({role}), departments=frozenset(departments))


def departments(answer) -> list:
    return [(entry.department, entry.sessions) for entry in answer.departments]


def stats(who, **query):
    return read_statistics(FakeReports(), who, StatsQuery.model_validate(query), TODAY)


def test_a_reviewer_sees_each_of_their_departments_and_only_them():
    answer = stats(caller(Role.REVIEWER, ["75", "92"]))
    assert departments(answer) == [("75", 5), ("92", 0)]
    assert answer.departments[1].amount_total == "0.00"
    assert (answer.year, answer.run_id, answer.quota) == (2026, "r", 12)


def test_a_national_reviewer_sees_every_known_department_and_an_admin_also_the_unknown_one():
    assert departments(stats(caller(Role.REVIEWER, ["*"]))) == [("13", 3), ("2A", 2), ("75", 5)]
    assert departments(stats(caller(Role.ADMIN))) == [("13", 3), ("2A", 2), ("75", 5), (None, 1)]


def test_one_department_in_scope():
    assert departments(stats(caller(Role.REVIEWER, ["2A"]), department="2a")) == [("2A", 2)]
    assert departments(stats(caller(Role.ADMIN), department="971")) == [("971", 0)]


def test_a_department_outside_the_scope_is_not_found():
    with pytest.raises(NotFound) as refused:
        stats(caller(Role.REVIEWER, ["75"]), department="13")
    assert answer_for(refused.value).code == "department_not_in_scope"


def test_no_tally_yet_for_the_year_is_a_clear_404():
    with pytest.raises(NotFound) as refused:
        stats(caller(Role.ADMIN), year=2025)
    assert answer_for(refused.value).code == "no_tally" and "2025" in refused.value.message


def test_psychologists_and_callers_without_a_role_are_refused():
    for who in (caller(Role.PSYCHOLOGIST), Caller(sub="u2", roles=frozenset())):
        with pytest.raises(RoleNotAllowed):
            stats(who)


@pytest.mark.parametrize("query", [{"department": "99"}, {"year": "last"}, {"year": "1999"}, {"dept": "75"}])
def test_bad_queries_are_refused(query):
    with pytest.raises(ValidationError):
        StatsQuery.model_validate(query)


def test_rows_carry_kinds_situations_and_the_states_share_and_older_reports_read_as_zero():
    class WithNewFigures(FakeReports):
        def read_json(self, key):
            summary = super().read_json(key)
            summary["departments"][2] |= {
                "amount_state": "50.00",
                "sessions_assessment": 2,
                "sessions_follow_up": 3,
                "sessions_by_situation": {"none": 4, "ame": 1},
            }
            return summary

    answer = read_statistics(WithNewFigures(), caller(Role.ADMIN), StatsQuery(), TODAY)
    paris = next(entry for entry in answer.departments if entry.department == "75")
    assert (paris.amount_state, paris.sessions_assessment, paris.sessions_follow_up) == ("50.00", 2, 3)
    assert paris.sessions_by_situation == {"none": 4, "ame": 1}
    marseille = next(entry for entry in answer.departments if entry.department == "13")
    assert (marseille.amount_state, marseille.sessions_assessment, marseille.sessions_by_situation) == ("0.00", 0, {})
    empty = stats(caller(Role.REVIEWER, ["92"])).departments[0]
    assert empty.sessions_by_situation["accident_tiers"] == 0 and empty.sessions_follow_up == 0
