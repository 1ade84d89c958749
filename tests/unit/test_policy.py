import datetime as dt
import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from msp.errors import InvalidFields
from msp.http_errors import answer_for
from msp.sessions import policy

SITUATIONS = [None, "css", "ame", "ald", "maternite", "at_mp", "accident_tiers"]


def euros(amounts: policy.Amounts) -> dict:
    return amounts.model_dump(mode="json")


def priced(day: dt.date, ordinal: int, situation: str | None) -> dict:
    rule = policy.rule_for(day)
    return euros(policy.amounts(rule, policy.kind_of(ordinal), policy.checked_situation(rule, situation)))


def test_shipped_history_is_two_rules_oldest_first():
    rules = policy.default_rules()
    assert [rule.valid_from for rule in rules] == [dt.date(2022, 4, 5), dt.date(2024, 6, 15)]


def test_the_first_session_of_the_year_is_the_assessment_the_others_follow_up():
    assert [policy.kind_of(ordinal) for ordinal in (1, 2, 3, 12)] == ["assessment"] + ["follow_up"] * 3


# What each payer pays, per situation, per rule period, per kind: (price, amo, amc, state, patient advance).
# 2022-04-05 to 2024-06-14: assessment 40, follow-up 30. From 2024-06-15: 50 for both.
EXPECTED = {
    None: {"amo": "0.60", "amc": "0.40", "state": "0", "advance": True},
    "css": {"amo": "0.60", "amc": "0.40", "state": "0", "advance": False},
    "ame": {"amo": "0", "amc": "0", "state": "1", "advance": False},
    "ald": {"amo": "1", "amc": "0", "state": "0", "advance": False},
    "maternite": {"amo": "1", "amc": "0", "state": "0", "advance": False},
    "at_mp": {"amo": "1", "amc": "0", "state": "0", "advance": False},
    "accident_tiers": {"amo": "0.60", "amc": "0.40", "state": "0", "advance": False},
}
PERIODS = [
    # (session day, ordinal, kind, price)
    (dt.date(2022, 4, 5), 1, "assessment", "40.00"),
    (dt.date(2023, 3, 10), 2, "follow_up", "30.00"),
    (dt.date(2024, 6, 14), 1, "assessment", "40.00"),
    (dt.date(2024, 6, 14), 8, "follow_up", "30.00"),  # the first period's quota edge
    (dt.date(2024, 6, 15), 1, "assessment", "50.00"),
    (dt.date(2024, 6, 15), 9, "follow_up", "50.00"),
    (dt.date(2026, 11, 20), 12, "follow_up", "50.00"),  # the second period's quota edge
]


def _expected(price: str, situation: str | None) -> dict:
    shares = EXPECTED[situation]
    total = Decimal(price)
    amounts = {payer: (total * Decimal(shares[payer])).quantize(Decimal("0.01")) for payer in ("amo", "amc", "state")}
    advance = total if shares["advance"] else Decimal(0)
    return {
        "price": price,
        **{payer: f"{value:.2f}" for payer, value in amounts.items()},
        "patient_advance": f"{advance:.2f}",
    }


@pytest.mark.parametrize("situation", SITUATIONS)
@pytest.mark.parametrize(("day", "ordinal", "kind", "price"), PERIODS)
def test_every_situation_in_both_periods(day, ordinal, kind, price, situation):
    assert policy.kind_of(ordinal) == kind
    amounts = priced(day, ordinal, situation)
    assert amounts == _expected(price, situation)
    total = sum(Decimal(amounts[payer]) for payer in ("amo", "amc", "state"))
    assert total == Decimal(amounts["price"])  # to the cent


def test_the_issues_first_example():
    """2023-03-10, no situation, first session of 2023: assessment, 40.00 = 24.00 + 16.00, advance 40.00."""
    assert priced(dt.date(2023, 3, 10), 1, None) == {
        "price": "40.00",
        "amo": "24.00",
        "amc": "16.00",
        "state": "0.00",
        "patient_advance": "40.00",
    }


def test_the_issues_second_example():
    """2024-07-01, ALD, third session of 2024: follow-up, 50.00 all AMO, nothing advanced."""
    assert policy.kind_of(3) == "follow_up"
    assert priced(dt.date(2024, 7, 1), 3, "ald") == {
        "price": "50.00",
        "amo": "50.00",
        "amc": "0.00",
        "state": "0.00",
        "patient_advance": "0.00",
    }


@pytest.mark.parametrize(("day", "quota", "referral"), [("2024-06-14", 8, True), ("2024-06-15", 12, False)])
def test_the_period_boundary(day, quota, referral):
    rule = policy.rule_for(dt.date.fromisoformat(day))
    assert (rule.sessions_per_year, rule.referral_required) == (quota, referral)


def test_before_the_programme_is_a_422_on_the_date():
    with pytest.raises(InvalidFields) as raised:
        policy.rule_for(dt.date(2022, 4, 4))
    assert answer_for(raised.value).status == 422
    assert raised.value.details == [{"field": "date", "message": "sessions are reimbursed from 2022-04-05 on"}]
    assert policy.find_rule(dt.date(2022, 4, 4)) is None


def test_shipped_rules_list_every_situation_with_a_label():
    for rule in policy.default_rules():
        assert [situation.code for situation in rule.situations] == SITUATIONS
        assert all(situation.label for situation in rule.situations)


@pytest.mark.parametrize("code", ["vip", "accident_travail", "tiers_payant"])
def test_unknown_situation_lists_the_allowed_codes(code):
    rule = policy.rule_for(dt.date(2025, 1, 1))
    with pytest.raises(InvalidFields) as raised:
        policy.checked_situation(rule, code)
    [detail] = raised.value.details
    assert detail["field"] == "situation"
    for known in SITUATIONS[1:]:
        assert known in detail["message"]


def test_amounts_serialise_as_strings_with_two_decimals_in_both_dump_modes():
    amounts = policy.amounts(
        policy.rule_for(dt.date(2025, 1, 1)), "follow_up", policy.default_rules()[1].situation("css")
    )
    assert amounts.model_dump() == amounts.model_dump(mode="json") == euros(amounts)
    assert json.loads(amounts.model_dump_json())["patient_advance"] == "0.00"


def make_rule(**changes) -> policy.Rule:
    fields = {
        "valid_from": "2030-01-01",
        "sessions_per_year": 10,
        "prices": {"assessment": "45.55", "follow_up": "45.55"},
        "referral_required": False,
        "situations": [
            {"code": None, "label": "Droit commun", "shares": {"amo": "0.60", "amc": "0.40"}, "tiers_payant": False},
            {
                "code": "split",
                "label": "Trois",
                "shares": {"amo": "0.3333", "state": "0.3333", "amc": "0.3334"},
                "tiers_payant": True,
            },
        ],
    }
    return policy.Rule.model_validate(fields | changes)


def test_shares_round_to_the_cent_and_the_last_payer_takes_the_rest():
    rule = make_rule()
    common = policy.amounts(rule, "follow_up", rule.situation(None))
    assert (common.amo, common.amc) == (Decimal("27.33"), Decimal("18.22"))
    assert common.amo + common.amc + common.state == common.price
    split = policy.amounts(rule, "follow_up", rule.situation("split"))
    assert (split.amo, split.state, split.amc) == (Decimal("15.18"), Decimal("15.18"), Decimal("15.19"))
    assert split.amo + split.amc + split.state == split.price


@pytest.mark.parametrize(
    "changes",
    [
        {"prices": {"assessment": 45.55, "follow_up": "45.55"}},
        {"prices": {"assessment": "45.55", "follow_up": "-1.00"}},
        {"prices": {"assessment": "45.55", "follow_up": "30.001"}},
        {"prices": {"assessment": "45.55"}},
        {"sessions_per_year": 0},
        {"situations": [{"code": None, "label": "a", "shares": {"amo": "0.60", "amc": "0.30"}, "tiers_payant": False}]},
        {"situations": [{"code": None, "label": "a", "shares": {"amo": 0.6, "amc": 0.4}, "tiers_payant": False}]},
        {"situations": [{"code": "css", "label": "a", "shares": {"amo": "1"}, "tiers_payant": True}]},  # no common case
        {
            "situations": [
                {"code": None, "label": "a", "shares": {"amo": "1"}, "tiers_payant": False},
                {"code": None, "label": "b", "shares": {"amo": "1"}, "tiers_payant": False},
            ]
        },
        {"situations": [{"code": "Not A Code", "label": "a", "shares": {"amo": "1"}, "tiers_payant": True}]},
        {"situations": [{"code": None, "label": "a", "shares": {"mutuelle": "1"}, "tiers_payant": False}]},
        {"sessions_per_year_typo": 12},
    ],
)
def test_incoherent_rules_are_refused(changes):
    with pytest.raises(ValidationError):
        make_rule(**changes)


def shipped_table() -> dict:
    return json.loads(policy.RULES_FILE.read_text(encoding="utf-8"))


def write(tmp_path, table: dict):
    path = tmp_path / "policy_rules.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    return path


def test_a_rule_added_to_the_data_applies_without_code_change(tmp_path):
    table = shipped_table()
    table["rules"].append(
        {
            "valid_from": "2027-01-01",
            "note": "a future rule, for the test",
            "sessions_per_year": 16,
            "prices": {"assessment": "60.00", "follow_up": "55.00"},
            "referral_required": False,
            "situations": [
                {
                    "code": None,
                    "label": "Droit commun",
                    "shares": {"amo": "0.70", "amc": "0.30"},
                    "tiers_payant": False,
                },
                {"code": "ame", "label": "AME", "shares": {"state": "1"}, "tiers_payant": True},
            ],
        }
    )
    rules = policy.load_rules(write(tmp_path, table))

    assert policy.rule_for(dt.date(2026, 12, 31), rules).sessions_per_year == 12
    future = policy.rule_for(dt.date(2027, 1, 1), rules)
    assert future.sessions_per_year == 16
    assert euros(policy.amounts(future, "assessment", future.situation(None))) == {
        "price": "60.00",
        "amo": "42.00",
        "amc": "18.00",
        "state": "0.00",
        "patient_advance": "60.00",
    }
    assert euros(policy.amounts(future, "follow_up", future.situation("ame")))["state"] == "55.00"
    with pytest.raises(InvalidFields):
        policy.checked_situation(future, "css")


def test_rules_are_ordered_by_date_whatever_the_file_order(tmp_path):
    table = shipped_table()
    table["rules"].reverse()
    rules = policy.load_rules(write(tmp_path, table))
    assert [rule.valid_from.year for rule in rules] == [2022, 2024]
    assert policy.rule_for(dt.date(2024, 6, 14), rules).sessions_per_year == 8


def test_two_rules_on_the_same_date_are_refused(tmp_path):
    table = shipped_table()
    table["rules"].append(dict(table["rules"][-1]))
    with pytest.raises(ValidationError):
        policy.load_rules(write(tmp_path, table))


# --- per year: closing dates and the look-up limit


def test_a_year_closes_on_31_march_of_the_next_by_default():
    years = policy.year_settings()
    assert years.closing_date(2024) == dt.date(2025, 3, 31)
    assert years.closing_date(2027) == dt.date(2028, 3, 31)
    assert years.daily_lookup_limit == 100


def test_closing_dates_and_the_look_up_limit_are_data(tmp_path):
    table = shipped_table()
    table["years"] = {"closing_day": "04-15", "closing_dates": {"2025": "2026-05-31"}, "daily_lookup_limit": 20}
    years = policy.load_policy(write(tmp_path, table)).years
    assert years.closing_date(2025) == dt.date(2026, 5, 31)
    assert years.closing_date(2026) == dt.date(2027, 4, 15)
    assert years.daily_lookup_limit == 20


@pytest.mark.parametrize(
    "years",
    [
        {"closing_day": "02-29"},
        {"closing_day": "13-01"},
        {"closing_dates": {"2025": "2025-12-31"}},
        {"closing_dates": {"2025": "2027-01-31"}},
        {"daily_lookup_limit": 0},
    ],
)
def test_incoherent_year_settings_are_refused(tmp_path, years):
    table = shipped_table() | {"years": years}
    with pytest.raises(ValidationError):
        policy.load_policy(write(tmp_path, table))
