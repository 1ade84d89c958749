"""GET /v1/public/stats: the latest tally's open figures for a year, closed months only, small counts suppressed.

Per department: the conventioned psychologists who declared sessions there in the year, and the sessions of
each closed month; nationally, the sessions of each closed month (the departments' sum: sessions of a
psychologist without a department are not published). A month is closed once the tally's date is past its
last day (every month of a final tally). Neither yearly sums of sessions nor a running total are published:
a new closed month would turn two published sums into that month's exact count.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from msp.errors import NoTally
from msp.geography import DEPARTMENTS
from msp.open_statistics.suppression import THRESHOLD, Count, protect_column, shown
from msp.tally.ports import ReportReader

# The same figures for everyone, changed by the nightly tally: browsers and the CDN may keep them an hour.
OPEN_STATS_CACHE_HEADERS = {"Cache-Control": "public, max-age=3600"}
COUNT_DESCRIPTION = f'A count, "< {THRESHOLD}" under {THRESHOLD}, or "secret" when withheld to protect another one'


class OpenStatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int | None = Field(default=None, ge=2000, le=9999, description="The current year when left out")


class MonthSessions(BaseModel):
    month: str = Field(description="YYYY-MM")
    sessions: Count = Field(description=COUNT_DESCRIPTION)


class DepartmentOpenFigures(BaseModel):
    department: str
    psychologists: Count = Field(
        description="Conventioned psychologists who declared sessions in this department in the year. "
        + COUNT_DESCRIPTION
    )
    months: list[MonthSessions]


class OpenStatistics(BaseModel):
    year: int
    as_of: str = Field(description="The tally's date")
    final: bool = Field(description="The year is closed and these figures are final")
    generated_at: str
    threshold: int = Field(description="Counts under it are never shown")
    closed_months: list[str]
    months: list[MonthSessions] = Field(description="Sessions in France per closed month")
    departments: list[DepartmentOpenFigures]


def _department_order(code: str) -> str:
    # Corsica's 2A and 2B between 19 and 21, as in every French list.
    return f"20{code[1]}" if code in {"2A", "2B"} else code


def closed_months(year: int, as_of: dt.date, final: bool) -> list[str]:
    return [
        f"{year}-{month:02d}"
        for month in range(1, 13)
        if final or dt.date(year, month, calendar.monthrange(year, month)[1]) < as_of
    ]


def open_figures(summary: dict[str, Any]) -> OpenStatistics:
    """The public document of a tally's summary (its departments and sessions per department and month)."""
    year, final = summary["year"], summary["final"]
    months = closed_months(year, dt.date.fromisoformat(summary["as_of"]), final)
    departments = sorted(DEPARTMENTS, key=_department_order)
    sessions = {(row["department"], row["month"]): row["sessions"] for row in summary["department_months"]}
    psychologists = {row["department"]: row["psychologists"] for row in summary["departments"]}
    national: list[MonthSessions] = []
    by_department: dict[str, list[MonthSessions]] = {code: [] for code in departments}
    for month in months:
        cells = {code: sessions.get((code, month), 0) for code in departments}
        published, total = protect_column(cells, sum(cells.values()))
        national.append(MonthSessions(month=month, sessions=total))
        for code in departments:
            by_department[code].append(MonthSessions(month=month, sessions=published[code]))
    return OpenStatistics(
        year=year,
        as_of=summary["as_of"],
        final=final,
        generated_at=summary["generated_at"],
        threshold=THRESHOLD,
        closed_months=months,
        months=national,
        departments=[
            DepartmentOpenFigures(
                department=code, psychologists=shown(psychologists.get(code, 0)), months=by_department[code]
            )
            for code in departments
        ],
    )


def read_open_statistics(reports: ReportReader, query: OpenStatsQuery, today: dt.date) -> OpenStatistics:
    """The open figures of the year's latest tally; 404 before its first complete run."""
    year = query.year or today.year
    pointer = reports.latest(year)
    if pointer is None:
        raise NoTally(f"No statistics for {year} yet: they appear after the nightly tally's first complete run.")
    summary = reports.read_json(pointer["summary"])
    if "department_months" not in summary:
        raise NoTally(
            f"The latest tally of {year} predates the open statistics: they appear after the next nightly run."
        )
    return open_figures(summary)
