"""Open statistics: small-cell suppression (checked against a brute-force reader) and the public document."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msp.errors import NoTally
from msp.geography import DEPARTMENTS
from msp.open_statistics.figures import OpenStatsQuery, closed_months, open_figures, read_open_statistics
from msp.open_statistics.suppression import SMALL, THRESHOLD, WITHHELD, protect_column, shown


def test_a_count_alone_is_shown_from_11_only():
    assert [shown(n) for n in (0, 1, 10, 11, 250)] == [SMALL, SMALL, SMALL, 11, 250]


def test_a_small_cell_alone_in_its_column_is_protected_by_withholding_the_smallest_other():
    published, total = protect_column({"48": 3, "75": 900, "13": 40, "23": 12}, 955)
    assert published == {"48": SMALL, "75": 900, "13": 40, "23": WITHHELD}
    assert total == 955


def test_zeros_summing_to_nothing_are_not_given_away_by_the_total():
    # Two departments at 0: the total minus the others would prove both are exactly 0.
    published, total = protect_column({"48": 0, "23": 0, "75": 30, "13": 20}, 50)
    assert published == {"48": SMALL, "23": SMALL, "75": 30, "13": WITHHELD}
    assert total == 50


def test_when_nothing_is_left_to_withhold_the_total_is():
    assert protect_column({"48": 0, "75": 11}, 11) == ({"48": SMALL, "75": WITHHELD}, WITHHELD)
    assert protect_column({"48": 4, "75": 5}, 9) == ({"48": SMALL, "75": SMALL}, SMALL)
    assert protect_column({"75": 30, "13": 20}, 50) == ({"75": 30, "13": 20}, 50)


def test_a_total_that_is_not_the_sum_is_a_programming_error():
    with pytest.raises(ValueError, match="sum"):
        protect_column({"75": 30}, 31)


def _possible_values(published: dict, total, cells: dict) -> dict[str, set[int]]:
    """What a reader can tell of each withheld cell: every value some assignment consistent with the table
    gives it ("< 11" in 0..10, "secret" from 11 up, summing to the total when it is shown), by enumerating the
    sums the other withheld cells can reach."""
    withheld = [key for key, value in published.items() if not isinstance(value, int)]
    if not isinstance(total, int):
        return {key: {-1, -2} for key in withheld}  # no equation: nothing pins any cell
    rest = total - sum(value for value in published.values() if isinstance(value, int))
    ranges = {key: range(0, THRESHOLD) if published[key] == SMALL else range(THRESHOLD, rest + 1) for key in withheld}
    possible: dict[str, set[int]] = {}
    for key in withheld:
        reachable = {0}
        for other in withheld:
            if other != key:
                reachable = {a + b for a in reachable for b in ranges[other] if a + b <= rest}
        possible[key] = {value for value in ranges[key] if rest - value in reachable}
        assert cells[key] in possible[key], "the truth is always a solution"
    return possible


columns = st.dictionaries(
    st.sampled_from(["01", "2A", "48", "75", "971"]),
    st.one_of(st.integers(0, 12), st.integers(0, 60)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(columns)
def test_no_withheld_cell_can_be_worked_out_exactly(cells):
    published, total = protect_column(cells, sum(cells.values()))
    for key, value in published.items():
        if cells[key] < THRESHOLD:
            assert value == SMALL
        else:
            assert value in (cells[key], WITHHELD)
    if total != WITHHELD:
        assert total == (sum(cells.values()) if sum(cells.values()) >= THRESHOLD else SMALL)
    for key, values in _possible_values(published, total, cells).items():
        assert len(values) > 1, (cells, published, total, key)


# ---------------------------------------------------------------- the public document


def summary(as_of="2026-03-15", final=False, rows=None, departments=None):
    return {
        "year": 2026,
        "run_id": "nightly-2026-03-15",
        "as_of": as_of,
        "final": final,
        "quota": 12,
        "generated_at": "2026-03-15T01:45:00Z",
        "departments": departments
        or [{"department": "75", "psychologists": 40}, {"department": "48", "psychologists": 2}],
        "months": [],
        "department_months": rows
        if rows is not None
        else [
            {"department": "75", "month": "2026-01", "sessions": 800},
            {"department": "75", "month": "2026-02", "sessions": 700},
            {"department": "75", "month": "2026-03", "sessions": 300},
            {"department": "48", "month": "2026-01", "sessions": 4},
            {"department": "13", "month": "2026-02", "sessions": 500},
            {"department": None, "month": "2026-01", "sessions": 3},
        ],
    }


def test_closed_months_end_before_the_tally_date_and_a_final_tally_closes_them_all():
    assert closed_months(2026, dt.date(2026, 3, 15), False) == ["2026-01", "2026-02"]
    assert closed_months(2026, dt.date(2026, 3, 1), False) == ["2026-01", "2026-02"]
    assert closed_months(2026, dt.date(2026, 1, 31), False) == []
    assert closed_months(2025, dt.date(2025, 12, 31), True) == [f"2025-{m:02d}" for m in range(1, 13)]


def test_every_department_is_listed_with_its_closed_months_and_small_counts_suppressed():
    figures = open_figures(summary())
    assert figures.closed_months == ["2026-01", "2026-02"]
    codes = [row.department for row in figures.departments]
    assert set(codes) == DEPARTMENTS and len(codes) == len(DEPARTMENTS)
    assert codes.index("19") < codes.index("2A") < codes.index("2B") < codes.index("21") < codes.index("971")
    rows = {row.department: row for row in figures.departments}
    assert rows["75"].psychologists == 40 and rows["48"].psychologists == SMALL and rows["01"].psychologists == SMALL
    assert [(m.month, m.sessions) for m in rows["75"].months] == [("2026-01", 800), ("2026-02", 700)]
    # January: every department but Paris is under 11 (all suppressed), the total shown.
    assert rows["48"].months[0].sessions == SMALL and rows["13"].months[0].sessions == SMALL
    # The national figure is the departments' sum: the 3 sessions without a department are not in it.
    assert [(m.month, m.sessions) for m in figures.months] == [("2026-01", 804), ("2026-02", 1200)]
    assert figures.threshold == THRESHOLD
    assert "2026-03" not in {m.month for row in figures.departments for m in row.months}


def test_the_latest_tally_of_the_year_is_read_and_a_year_without_one_is_a_clear_404():
    class Reports:
        def __init__(self, documents):
            self.documents = documents

        def latest(self, year):
            return {"summary": f"reports/{year}/r/summary.json"} if year in self.documents else None

        def read_json(self, key):
            return self.documents[int(key.split("/")[1])]

    reports = Reports({2026: summary(), 2025: {"year": 2025, "departments": []}})
    today = dt.date(2026, 3, 20)
    assert read_open_statistics(reports, OpenStatsQuery(), today).year == 2026
    with pytest.raises(NoTally, match="2024"):
        read_open_statistics(reports, OpenStatsQuery(year=2024), today)
    with pytest.raises(NoTally, match="predates"):  # a summary written before the open statistics existed
        read_open_statistics(reports, OpenStatsQuery(year=2025), today)
