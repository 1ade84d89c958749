import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from msp.errors import InvalidFields
from msp.http_errors import answer_for
from msp.sessions import policy

TIERS_PAYANT_CODES = ["css", "ald", "maternite", "accident_travail"]


def euros(amounts: policy.Amounts) -> dict:
    return amounts.model_dump(mode="json")


def test_shipped_history_is_two_rules_oldest_first():
    rules = policy.default_rules()
    assert [rule.valid_from for rule in rules] == [dt.date(2022, 4, 5), dt.date(2024, 6, 15)]


@pytest.mark.parametrize("day", [dt.date(2022, 4, 5), dt.date(2023, 1, 1), dt.date(2024, 6, 14)])
def test_first_period_8_sessions_40_then_30(day):
    rule = policy.rule_for(day)
    assert rule.sessions_per_year == 8
    assert euros(policy.amounts(rule, True, None)) == {
        "price": "40.00",
        "amo": "24.00",
        "amc": "16.00",
        "patient_advance": "40.00",
    }
    assert euros(policy.amounts(rule, False, None)) == {
        "price": "30.00",
        "amo": "18.00",
        "amc": "12.00",
        "patient_advance": "30.00",
    }


@pytest.mark.parametrize("day", [dt.date(2024, 6, 15), dt.date(2025, 1, 1), dt.date(2026, 11, 20)])
def test_second_period_12_sessions_at_50(day):
    rule = policy.rule_for(day)
    assert rule.sessions_per_year == 12
    expected = {"price": "50.00", "amo": "30.00", "amc": "20.00", "patient_advance": "50.00"}
    assert euros(policy.amounts(rule, True, None)) == expected
    assert euros(policy.amounts(rule, False, None)) == expected


def test_2024_06_14_and_2024_06_15_follow_different_rules():
    before, after = policy.rule_for(dt.date(2024, 6, 14)), policy.rule_for(dt.date(2024, 6, 15))
    assert before != after
    assert (before.sessions_per_year, after.sessions_per_year) == (8, 12)
    assert policy.amounts(before, False, None).price == Decimal("30.00")
    assert policy.amounts(after, False, None).price == Decimal("50.00")


def test_only_the_first_rule_prices_the_first_session_apart():
    assert policy.rule_for(dt.date(2023, 1, 1)).prices_first_session_apart
    assert not policy.rule_for(dt.date(2025, 1, 1)).prices_first_session_apart


def test_before_the_programme_is_a_422_on_the_date():
    with pytest.raises(InvalidFields) as raised:
        policy.rule_for(dt.date(2022, 4, 4))
    assert answer_for(raised.value).status == 422
    assert raised.value.details == [{"field": "date", "message": "sessions are reimbursed from 2022-04-05 on"}]
    assert policy.find_rule(dt.date(2022, 4, 4)) is None


@pytest.mark.parametrize("day", [dt.date(2023, 1, 1), dt.date(2025, 1, 1)])
@pytest.mark.parametrize("reason", TIERS_PAYANT_CODES)
def test_tiers_payant_patient_advances_nothing(day, reason):
    rule = policy.rule_for(day)
    without = policy.amounts(rule, False, None)
    under = policy.amounts(rule, False, reason)
    assert under.patient_advance == Decimal("0.00")
    assert (under.price, under.amo, under.amc) == (without.price, without.amo, without.amc)


def test_shipped_rules_list_the_tiers_payant_reasons():
    for rule in policy.default_rules():
        assert rule.tiers_payant_codes == TIERS_PAYANT_CODES
        assert all(reason.label for reason in rule.tiers_payant_reasons)


def test_unknown_tiers_payant_reason_lists_the_allowed_codes():
    rule = policy.rule_for(dt.date(2025, 1, 1))
    with pytest.raises(InvalidFields) as raised:
        policy.amounts(rule, False, "vip")
    [detail] = raised.value.details
    assert detail["field"] == "tiers_payant_reason"
    for code in TIERS_PAYANT_CODES:
        assert code in detail["message"]


def test_amounts_serialise_as_strings_with_two_decimals_in_both_dump_modes():
    amounts = policy.amounts(policy.rule_for(dt.date(2025, 1, 1)), False, "css")
    assert amounts.model_dump() == amounts.model_dump(mode="json") == euros(amounts)
    assert json.loads(amounts.model_dump_json())["patient_advance"] == "0.00"


def make_rule(**changes) -> policy.Rule:
    fields = {
        "valid_from": "2030-01-01",
        "sessions_per_year": 10,
        "first_session_price": "45.55",
        "following_session_price": "45.55",
        "amo_share": "0.60",
        "amc_share": "0.40",
        "tiers_payant_reasons": [{"code": "css", "label": "Complémentaire santé solidaire"}],
    }
    return policy.Rule.model_validate(fields | changes)


def test_shares_round_to_the_cent_and_add_up_to_the_price():
    amounts = policy.amounts(make_rule(), False, None)
    assert (amounts.amo, amounts.amc) == (Decimal("27.33"), Decimal("18.22"))
    assert amounts.amo + amounts.amc == amounts.price


@pytest.mark.parametrize(
    "changes",
    [
        {"amc_share": "0.30"},
        {"first_session_price": 45.55},
        {"amo_share": 0.6, "amc_share": 0.4},
        {"following_session_price": "-1.00"},
        {"following_session_price": "30.001"},
        {"sessions_per_year": 0},
        {"tiers_payant_reasons": [{"code": "css", "label": "a"}, {"code": "css", "label": "b"}]},
        {"tiers_payant_reasons": [{"code": "Not A Code", "label": "a"}]},
        {"sessions_per_year_typo": 12},
    ],
)
def test_incoherent_rules_are_refused(changes):
    with pytest.raises(ValidationError):
        make_rule(**changes)


def shipped_table() -> dict:
    return json.loads(policy.RULES_FILE.read_text(encoding="utf-8"))


def test_a_rule_added_to_the_data_applies_without_code_change(tmp_path):
    table = shipped_table()
    table["rules"].append(
        {
            "valid_from": "2027-01-01",
            "note": "a future rule, for the test",
            "sessions_per_year": 16,
            "first_session_price": "60.00",
            "following_session_price": "55.00",
            "amo_share": "0.70",
            "amc_share": "0.30",
            "tiers_payant_reasons": [{"code": "ame", "label": "Aide médicale de l'État"}],
        }
    )
    path = tmp_path / "policy_rules.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    rules = policy.load_rules(path)

    assert policy.rule_for(dt.date(2026, 12, 31), rules).sessions_per_year == 12
    future = policy.rule_for(dt.date(2027, 1, 1), rules)
    assert future.sessions_per_year == 16
    assert euros(policy.amounts(future, True, None)) == {
        "price": "60.00",
        "amo": "42.00",
        "amc": "18.00",
        "patient_advance": "60.00",
    }
    assert policy.amounts(future, False, "ame").patient_advance == Decimal("0.00")
    with pytest.raises(InvalidFields):
        policy.amounts(future, False, "css")


def test_rules_are_ordered_by_date_whatever_the_file_order(tmp_path):
    table = shipped_table()
    table["rules"].reverse()
    path = tmp_path / "policy_rules.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    assert [rule.valid_from.year for rule in policy.load_rules(path)] == [2022, 2024]
    assert policy.rule_for(dt.date(2024, 6, 14), policy.load_rules(path)).sessions_per_year == 8


def test_two_rules_on_the_same_date_are_refused(tmp_path):
    table = shipped_table()
    table["rules"].append(dict(table["rules"][-1]))
    path = tmp_path / "policy_rules.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    with pytest.raises(ValidationError):
        policy.load_rules(path)
