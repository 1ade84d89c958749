"""The reimbursement policy as dated data: which rule a session date falls under, and what a session costs.

The rules live in policy_rules.json; a new rule is a new entry there, valid from its date until the next one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints, model_validator

from msp.errors import InvalidFields

RULES_FILE = Path(__file__).with_name("policy_rules.json")
CENT = Decimal("0.01")


def _decimal_text(value: Any) -> Any:
    # A JSON float such as 0.1 is already rounded in binary; the data must spell amounts exactly.
    if isinstance(value, float):
        raise ValueError('write amounts and shares as strings, e.g. "30.00" or "0.60"')
    return value


Money = Annotated[Decimal, BeforeValidator(_decimal_text), Field(ge=0, decimal_places=2)]
Share = Annotated[Decimal, BeforeValidator(_decimal_text), Field(ge=0, le=1, decimal_places=4)]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class TiersPayantReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ReasonCode
    label: Annotated[str, StringConstraints(min_length=1)]


class Rule(BaseModel):
    """One row of the policy table: it applies to sessions from `valid_from` until the next row's date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    valid_from: dt.date
    note: str = ""
    sessions_per_year: int = Field(ge=1)
    first_session_price: Money
    following_session_price: Money
    amo_share: Share
    amc_share: Share
    tiers_payant_reasons: tuple[TiersPayantReason, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        if self.amo_share + self.amc_share != 1:
            raise ValueError("amo_share and amc_share must add up to 1")
        codes = self.tiers_payant_codes
        if len(set(codes)) != len(codes):
            raise ValueError("list each tiers payant reason code once")
        return self

    @property
    def tiers_payant_codes(self) -> list[str]:
        return [reason.code for reason in self.tiers_payant_reasons]

    @property
    def prices_first_session_apart(self) -> bool:
        """Whether a declaration must say if the session is the patient's first of the year."""
        return self.first_session_price != self.following_session_price

    def price(self, first_session: bool) -> Decimal:
        return self.first_session_price if first_session else self.following_session_price


class PolicyTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_rule_per_date(self) -> PolicyTable:
        dates = [rule.valid_from for rule in self.rules]
        if len(set(dates)) != len(dates):
            raise ValueError("two rules start on the same date")
        return self


def load_rules(path: Path = RULES_FILE) -> tuple[Rule, ...]:
    """The rules of a policy file, oldest first."""
    table = PolicyTable.model_validate_json(path.read_text(encoding="utf-8"))
    return tuple(sorted(table.rules, key=lambda rule: rule.valid_from))


@cache
def default_rules() -> tuple[Rule, ...]:
    return load_rules()


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


Euros = Annotated[Decimal, PlainSerializer(lambda value: f"{value:.2f}", return_type=str)]


class Amounts(BaseModel):
    """What a session costs and who pays it, in euros (serialised as strings with 2 decimals)."""

    price: Euros
    amo: Euros
    amc: Euros
    patient_advance: Euros


def amounts(rule: Rule, first_session: bool, tiers_payant_reason: str | None) -> Amounts:
    if tiers_payant_reason is not None and tiers_payant_reason not in rule.tiers_payant_codes:
        allowed = ", ".join(rule.tiers_payant_codes) or "none under this rule"
        raise InvalidFields(
            "The tiers payant reason is not one the policy knows.",
            details=[{"field": "tiers_payant_reason", "message": f"use null or one of: {allowed}"}],
        )
    price = rule.price(first_session).quantize(CENT)
    amo = (price * rule.amo_share).quantize(CENT, rounding=ROUND_HALF_UP)
    # The complémentaire pays the rest, so the two shares always add up to the price to the cent.
    amc = price - amo
    # Under tiers payant both payers are billed directly; otherwise the patient pays and is reimbursed.
    patient_advance = Decimal("0.00") if tiers_payant_reason else price
    return Amounts(price=price, amo=amo, amc=amc, patient_advance=patient_advance)
