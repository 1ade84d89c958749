"""GET /v1/stats: the latest tally's figures per department, as far as the caller's scope reaches."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from msp.auth import ALL_DEPARTMENTS, Caller, Role
from msp.errors import DepartmentNotInScope, NoTally
from msp.geography import DEPARTMENT_CODES, DEPARTMENTS
from msp.tally.ports import ReportReader


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int | None = Field(default=None, ge=2000, le=9999)
    department: Annotated[str, BeforeValidator(_upper), DEPARTMENT_CODES] | None = None

    @field_validator("department")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in DEPARTMENTS:
            raise ValueError("a department code such as 01, 2A, 75 or 971")
        return value


class DepartmentStats(BaseModel):
    """One department's row, as in DESIGN.md, with the tally's other amounts after the contract's fields."""

    department: str | None
    sessions: int
    patients: int
    psychologists: int
    amount_total: str
    amount_amo: str
    amount_amc: str
    patients_at_quota: int
    amount_patient_advance: str
    tiers_payant_sessions: int
    amount_tiers_payant: str
    patients_one_left: int
    # By payer, kind and situation (reports written before these were tallied have none: zero).
    amount_state: str = "0.00"
    sessions_assessment: int = 0
    sessions_follow_up: int = 0
    sessions_by_situation: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def empty(cls, department: str) -> DepartmentStats:
        from msp.tally.reports import situation_labels

        zero = "0.00"
        return cls(
            sessions_by_situation=dict.fromkeys(situation_labels(), 0),
            department=department,
            sessions=0,
            patients=0,
            psychologists=0,
            amount_total=zero,
            amount_amo=zero,
            amount_amc=zero,
            patients_at_quota=0,
            amount_patient_advance=zero,
            tiers_payant_sessions=0,
            amount_tiers_payant=zero,
            patients_one_left=0,
        )


class Statistics(BaseModel):
    year: int
    generated_at: str
    departments: list[DepartmentStats]
    run_id: str
    as_of: str
    final: bool
    quota: int


def _visible(caller: Caller, rows: dict[str | None, DepartmentStats], asked: str | None) -> list[DepartmentStats]:
    """Rows for one asked department, or all the caller may see. A reviewer scoped to a list of departments
    gets a row for each of them, zero when the tally found no session there."""
    if asked is not None:
        return [rows.get(asked) or DepartmentStats.empty(asked)]
    if caller.has(Role.ADMIN):
        return list(rows.values())
    if ALL_DEPARTMENTS in caller.departments:
        return [row for code, row in rows.items() if caller.covers_department(code)]
    return [rows.get(code) or DepartmentStats.empty(code) for code in sorted(caller.departments)]


def read_statistics(reports: ReportReader, caller: Caller, query: StatsQuery, today: dt.date) -> Statistics:
    """The year's latest tally for reviewers (their departments) and admins (all); 403 for anyone else.

    A department outside a reviewer's scope answers 404, as a department would without a tally: the route
    says nothing about departments the caller does not cover.
    """
    caller.require(Role.REVIEWER, Role.ADMIN)
    year = query.year or today.year
    if query.department is not None and not caller.covers_department(query.department):
        raise DepartmentNotInScope(f"No statistics for department {query.department} in your scope.")
    pointer = reports.latest(year)
    if pointer is None:
        raise NoTally(
            f"No tally has run for {year} yet: statistics appear after the nightly tally's first complete run."
        )
    summary = reports.read_json(pointer["summary"])
    rows = {row["department"]: DepartmentStats.model_validate(row) for row in summary["departments"]}
    return Statistics(
        year=summary["year"],
        generated_at=summary["generated_at"],
        departments=_visible(caller, rows, query.department),
        run_id=summary["run_id"],
        as_of=summary["as_of"],
        final=summary["final"],
        quota=summary["quota"],
    )
