"""The reimbursement policy as dated data: which rule a session date falls under, what a session of each kind
costs, who pays it in each situation, and until when a year takes declarations.

The rules live in policy_rules.json; a new rule is a new entry there, valid from its date until the next one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints, model_validator

from msp.errors import InvalidFields

RULES_FILE = Path(__file__).with_name("policy_rules.json")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")

Kind = Literal["assessment", "follow_up"]
ASSESSMENT: Kind = "assessment"
FOLLOW_UP: Kind = "follow_up"
# The order in which payers take their share; the last one with a share takes what rounding left.
PAYERS = ("amo", "state", "amc")


def _decimal_text(value: Any) -> Any:
    # A JSON float such as 0.1 is already rounded in binary; the data must spell amounts exactly.
    if isinstance(value, float):
        raise ValueError('write amounts and shares as strings, e.g. "30.00" or "0.60"')
    return value


Money = Annotated[Decimal, BeforeValidator(_decimal_text), Field(ge=0, decimal_places=2)]
Share = Annotated[Decimal, BeforeValidator(_decimal_text), Field(ge=0, le=1, decimal_places=4)]
SituationCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prices(_Data):
    assessment: Money
    follow_up: Money


class Shares(_Data):
    """Each payer's share of the price: the Assurance Maladie (amo), the complémentaire or the CSS acting as
    one (amc), the State for the AME (state)."""

    amo: Share = Decimal(0)
    amc: Share = Decimal(0)
    state: Share = Decimal(0)

    @model_validator(mode="after")
    def _whole_price(self) -> Shares:
        if self.amo + self.amc + self.state != 1:
            raise ValueError("the shares of a situation must add up to 1")
        return self


class Situation(_Data):
    """Who pays a session in one situation; `code` null is the common case (no particular situation)."""

    code: SituationCode | None
    label: Annotated[str, StringConstraints(min_length=1)]
    shares: Shares
    # Tiers payant: the payers are billed directly and the patient advances nothing.
    tiers_payant: bool


class Rule(_Data):
    """One row of the policy table: it applies to sessions from `valid_from` until the next row's date."""

    valid_from: dt.date
    note: str = ""
    sessions_per_year: int = Field(ge=1)
    prices: Prices
    # Whether a session needs a referral letter (courrier d'adressage) from a doctor or a midwife.
    referral_required: bool
    situations: tuple[Situation, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_row_per_situation(self) -> Rule:
        codes = [situation.code for situation in self.situations]
        if len(set(codes)) != len(codes):
            raise ValueError("list each situation code once")
        if None not in codes:
            raise ValueError("list the common case, a situation with code null")
        return self

    @property
    def situation_codes(self) -> list[str]:
        return [situation.code for situation in self.situations if situation.code is not None]

    def situation(self, code: str | None) -> Situation | None:
        return next((situation for situation in self.situations if situation.code == code), None)

    def price(self, kind: Kind) -> Decimal:
        return getattr(self.prices, kind)


class YearSettings(_Data):
    """What applies per calendar year: until when it takes declarations, and how many distinct patients a
    psychologist may look up a day."""

    # Day of the following year a year closes on, unless `closing_dates` names another date for it.
    closing_day: Annotated[str, StringConstraints(pattern=_MONTH_DAY.pattern)] = "03-31"
    closing_dates: dict[int, dt.date] = Field(default_factory=dict)
    daily_lookup_limit: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _valid_days(self) -> YearSettings:
        month, day = (int(part) for part in self.closing_day.split("-"))
        dt.date(2001, month, day)  # a day every year has: no 29 February
        for year, closing in self.closing_dates.items():
            if closing.year != year + 1:
                raise ValueError(f"{year} closes in the following year, not on {closing.isoformat()}")
        return self

    def closing_date(self, year: int) -> dt.date:
        """The last day declarations and cancellations of sessions held in `year` are taken."""
        if year in self.closing_dates:
            return self.closing_dates[year]
        month, day = (int(part) for part in self.closing_day.split("-"))
        return dt.date(year + 1, month, day)


class PolicyTable(_Data):
    years: YearSettings = YearSettings()
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_rule_per_date(self) -> PolicyTable:
        dates = [rule.valid_from for rule in self.rules]
        if len(set(dates)) != len(dates):
            raise ValueError("two rules start on the same date")
        return self


def load_policy(path: Path = RULES_FILE) -> PolicyTable:
    """A policy file, its rules oldest first."""
    table = PolicyTable.model_validate_json(path.read_text(encoding="utf-8"))
    return table.model_copy(update={"rules": tuple(sorted(table.rules, key=lambda rule: rule.valid_from))})


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    return load_policy(path).rules


@cache
def default_policy() -> PolicyTable:
    return load_policy()


def default_rules() -> tuple[Rule, ...]:
    return default_policy().rules


def year_settings() -> YearSettings:
    return default_policy().years


def find_rule(session_date: dt.date, rules: Sequence[Rule] | None = None) -> Rule | None:
    """The latest rule started on or before the session date; None before the programme began."""
    table = default_rules() if rules is None else rules
    started = [rule for rule in table if rule.valid_from <= session_date]
    return max(started, key=lambda rule: rule.valid_from, default=None)


def rule_for(session_date: dt.date, rules: Sequence[Rule] | None = None) -> Rule:
    """The rule a session date falls under; 422 before the first one."""
    rule = find_rule(session_date, rules)
    if rule is None:
        table = default_rules() if rules is None else rules
        start = min((candidate.valid_from for candidate in table), default=None)
        since = f"sessions are reimbursed from {start.isoformat()} on" if start else "no policy rule is in force"
        raise InvalidFields(
            "The session date is before the programme started.", details=[{"field": "date", "message": since}]
        )
    return rule


def kind_of(ordinal: int) -> Kind:
    """The patient's first session of the year (by declaration order) is the assessment session."""
    return ASSESSMENT if ordinal == 1 else FOLLOW_UP


def checked_situation(rule: Rule, code: str | None) -> Situation:
    situation = rule.situation(code)
    if situation is None:
        allowed = ", ".join(rule.situation_codes)
        raise InvalidFields(
            "The situation is not one the policy knows.",
            details=[{"field": "situation", "message": f"use null or one of: {allowed}"}],
        )
    return situation


Euros = Annotated[Decimal, PlainSerializer(lambda value: f"{value:.2f}", return_type=str)]


class Amounts(BaseModel):
    """What a session costs and who pays it, in euros (serialised as strings with 2 decimals): the payers'
    amounts add up to the price to the cent."""

    price: Euros
    amo: Euros
    amc: Euros
    state: Euros = ZERO
    patient_advance: Euros


def amounts(rule: Rule, kind: Kind, situation: Situation) -> Amounts:
    price = rule.price(kind).quantize(CENT)
    shares = {payer: getattr(situation.shares, payer) for payer in PAYERS}
    paying = [payer for payer in PAYERS if shares[payer]]
    paid = dict.fromkeys(PAYERS, ZERO)
    for payer in paying[:-1]:
        paid[payer] = (price * shares[payer]).quantize(CENT, rounding=ROUND_HALF_UP)
    # The last payer takes the rest, so the amounts always add up to the price to the cent.
    paid[paying[-1]] = price - sum(paid.values())
    # Under tiers payant the payers are billed directly; otherwise the patient pays and is reimbursed.
    advance = ZERO if situation.tiers_payant else price
    return Amounts(price=price, patient_advance=advance, **paid)
