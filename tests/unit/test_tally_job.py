"""The tally job on in-memory fakes of its storage: stopping before the timeout, crashing, resuming, repairing."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import random

import pytest
from pydantic import ValidationError

from msp.errors import InvalidFields
from msp.tally.job import MAX_CONTINUATIONS, TallyEvent, continuation_event, run_identity, run_tally
from msp.tally.rules import CHANGED_SINCE_READ, REPAIRED, TOO_RECENT, CounterRow, SessionRow
from tests.unit.use_case_fakes import RecordedMetrics

TODAY = dt.date(2025, 3, 10)
CLOSING_RUN_DAY = dt.date(2025, 4, 1)  # the day after 2024's closing date
NOW = dt.datetime(2025, 3, 10, 1, 30, tzinfo=dt.UTC)


class FakeSessions:
    """The year as rows per shard; pages of `page_size` rows (default 7), keyed by their position."""

    def __init__(self, shards: dict[int, list], fail_after_pages: int | None = None):
        self.shards = shards
        self.fail_after_pages = fail_after_pages
        self.pages_read = 0
        self.repairs: list[dict] = []
        self.repair_answer = REPAIRED

    def year_pages(self, year, shard, start_key=None, page_size=None):
        rows = self.shards.get(shard, []) if year == 2024 else []
        size = page_size or 7
        position = start_key["position"] if start_key else 0
        while True:
            if self.fail_after_pages is not None and self.pages_read >= self.fail_after_pages:
                raise ConnectionError("the process dies here")
            self.pages_read += 1
            page = rows[position : position + size]
            position += len(page)
            last = {"position": position} if position < len(rows) else None
            yield page, last
            if last is None:
                return

    def repair_counter(self, patient_key, year, **arguments):
        self.repairs.append({"patient_key": patient_key, "year": year, **arguments})
        return self.repair_answer


class FakeReports:
    def __init__(self):
        self.runs: dict = {}
        self.checkpoints: dict = {}
        self.files: dict = {}
        self.latest_pointer: dict = {}

    def run_state(self, year, run_id):
        shards = {
            shard: copy.deepcopy(cp) for (y, r, shard), cp in self.checkpoints.items() if (y, r) == (year, run_id)
        }
        return copy.deepcopy(self.runs.get((year, run_id))), shards

    def save_run(self, year, run_id, manifest):
        self.runs[(year, run_id)] = json.loads(json.dumps(manifest))

    def save_checkpoint(self, year, run_id, shard, checkpoint):
        self.checkpoints[(year, run_id, shard)] = json.loads(json.dumps(checkpoint))

    def write_report(self, year, run_id, files):
        for name, (body, _) in files.items():
            self.files[f"reports/{year}/{run_id}/{name}"] = body

    def set_latest(self, year, pointer):
        self.latest_pointer[year] = pointer

    def report(self, run_id: str) -> dict:
        document = json.loads(self.files[f"reports/2024/{run_id}/report.json"])
        document.pop("generated_at")
        return document

    def csv(self, run_id: str) -> dict:
        return {
            name: body
            for name, body in self.files.items()
            if name.startswith(f"reports/2024/{run_id}/") and name.endswith(".csv")
        }


def year_rows(seed: int = 7, patients: int = 120) -> dict[int, list]:
    draw = random.Random(seed)
    shards: dict[int, list] = {}
    for number in range(patients):
        key = f"k1:{number:06x}"
        sessions = draw.randint(0, 12)
        rows = shards.setdefault(number % 16, [])
        drifted = number in (5, 17)
        rows.append(CounterRow(key, sessions + (1 if drifted else 0), "2024-12-01T00:00:00.000000Z"))
        for _ in range(sessions):
            price = draw.choice([3000, 4000, 5000])
            rows.append(
                SessionRow(
                    key,
                    f"psy-{draw.randint(1, 9)}",
                    draw.choice(["75", "92", "2A", "971"]),
                    f"2024-{draw.randint(1, 12):02d}-{draw.randint(1, 28):02d}",
                    "follow_up",
                    None,
                    price,
                    price * 6 // 10,
                    price - price * 6 // 10,
                    0,
                    price,
                    "2022-04-05",
                )
            )
    return shards


def run(sessions, reports, event=None, *, remaining=lambda: 900_000, log=None, today=TODAY, metrics=None):
    return run_tally(
        sessions,
        reports,
        event or TallyEvent(year=2024, run_id="r1", checkpoint_seconds=0),
        today=today,
        now=lambda: NOW,
        remaining_ms=remaining,
        log=log or logging.getLogger("test-tally"),
        metrics=RecordedMetrics() if metrics is None else metrics,
    )


def test_an_uninterrupted_run_writes_the_report_the_csv_files_and_the_pointer():
    reports = FakeReports()
    outcome = run(FakeSessions(year_rows()), reports)
    assert outcome.status == "complete" and outcome.shards_done == 16
    assert outcome.report == "reports/2024/r1/"
    assert outcome.totals["drifts"] == 2
    assert {name.rsplit("/", 1)[1] for name in reports.files} >= {"report.json", "summary.json", "departments.csv"}
    assert reports.latest_pointer[2024]["run_id"] == "r1"
    assert reports.runs[(2024, "r1")]["status"] == "complete"
    report = reports.report("r1")
    assert (report["as_of"], report["quota"], report["final"]) == ("2024-12-31", 12, False)


def test_a_run_stopped_before_the_timeout_resumes_to_the_same_report():
    baseline = FakeReports()
    run(FakeSessions(year_rows()), baseline)

    reports, calls = FakeReports(), {"n": 0}

    def running_out():
        calls["n"] += 1
        return 900_000 if calls["n"] < 20 else 1_000  # the margin is 60 s: stop after ~20 pages

    first = run(FakeSessions(year_rows()), reports, remaining=running_out)
    assert first.status == "incomplete" and first.shards_done < 16
    assert len([key for key in reports.checkpoints if key[:2] == (2024, "r1")]) == 16, "every shard saved"
    assert reports.files == {} and 2024 not in reports.latest_pointer
    second = run(FakeSessions(year_rows()), reports)
    assert second.status == "complete"
    assert reports.report("r1") == baseline.report("r1")
    assert reports.csv("r1") == baseline.csv("r1")


def test_a_run_that_crashed_midway_resumes_without_counting_twice():
    baseline = FakeReports()
    run(FakeSessions(year_rows()), baseline)

    reports = FakeReports()
    with pytest.raises(ConnectionError):
        run(FakeSessions(year_rows(), fail_after_pages=30), reports)
    saved = [cp for key, cp in reports.checkpoints.items() if key[:2] == (2024, "r1")]
    assert saved and not all(cp["done"] for cp in saved)
    for fail_after in (10, 25):  # crash again, later, then finish
        with pytest.raises(ConnectionError):
            run(FakeSessions(year_rows(), fail_after_pages=fail_after), reports)
    run(FakeSessions(year_rows()), reports)
    assert reports.report("r1") == baseline.report("r1")


def test_a_complete_run_invoked_again_reads_nothing():
    reports = FakeReports()
    first = run(FakeSessions(year_rows()), reports)
    sessions = FakeSessions(year_rows())
    again = run(sessions, reports)
    assert sessions.pages_read == 0
    assert (again.status, again.report, again.totals) == ("complete", first.report, first.totals)


def test_a_run_is_counted_finished_once_by_the_invocation_that_completes_it():
    reports, metrics, calls = FakeReports(), RecordedMetrics(), {"n": 0}

    def running_out():
        calls["n"] += 1
        return 900_000 if calls["n"] < 20 else 1_000

    assert run(FakeSessions(year_rows()), reports, remaining=running_out, metrics=metrics).status == "incomplete"
    assert metrics.events == []
    run(FakeSessions(year_rows()), reports, metrics=metrics)
    run(FakeSessions(year_rows()), reports, metrics=metrics)  # invoked again once complete: not a new run
    assert metrics.events == [("tally_finished", 2, None)]


def test_a_resumed_run_keeps_the_plan_it_started_with():
    reports = FakeReports()
    nightly = TallyEvent(kind="nightly", checkpoint_seconds=0)
    at_christmas = dt.date(2024, 12, 24)
    outcome = run_tally(
        FakeSessions(year_rows()),
        reports,
        nightly,
        today=at_christmas,
        now=lambda: NOW,
        remaining_ms=lambda: 0,
        log=logging.getLogger("t"),
        metrics=RecordedMetrics(),
    )
    assert outcome.status == "incomplete" and outcome.run_id == "nightly-2024-12-24"
    follow_up = TallyEvent.model_validate(continuation_event(nightly, outcome))
    run(FakeSessions(year_rows()), reports, follow_up)
    report = reports.report("nightly-2024-12-24")
    assert report["as_of"] == "2024-12-24" and report["final"] is False


def test_continuations_carry_the_run_and_stop_after_a_bound():
    event = TallyEvent(kind="closing", repair=True, page_size=100)
    outcome = run(FakeSessions({}), FakeReports(), event, remaining=lambda: 0, today=CLOSING_RUN_DAY)
    follow_up = continuation_event(event, outcome)
    assert follow_up["kind"] == "manual" and follow_up["year"] == 2024 and follow_up["run_id"] == "final-2025-04-01"
    assert follow_up["repair"] is True and follow_up["page_size"] == 100 and follow_up["continuation"] == 1
    assert (
        continuation_event(TallyEvent.model_validate(follow_up | {"continuation": MAX_CONTINUATIONS}), outcome) is None
    )
    done = run(FakeSessions({}), FakeReports())
    assert continuation_event(event, done) is None


def test_run_identity_by_kind():
    assert run_identity(TallyEvent(kind="nightly"), TODAY, NOW) == (2025, "nightly-2025-03-10")
    assert run_identity(TallyEvent(kind="closing"), TODAY, NOW) == (2024, "final-2025-03-10")
    assert run_identity(TallyEvent(year=2023, run_id="mine"), TODAY, NOW) == (2023, "mine")
    year, run_id = run_identity(TallyEvent(), TODAY, NOW)
    assert year == 2025 and run_id.startswith("manual-20250310T013000")


def test_the_closing_run_is_final_and_measured_at_the_years_end():
    reports = FakeReports()
    run(FakeSessions(year_rows()), reports, TallyEvent(kind="closing", checkpoint_seconds=0), today=CLOSING_RUN_DAY)
    report = reports.report("final-2025-04-01")
    assert (report["year"], report["final"], report["as_of"], report["quota"]) == (2024, True, "2024-12-31", 12)


@pytest.mark.parametrize(
    "today", [dt.date(2025, 1, 1), dt.date(2025, 3, 31), dt.date(2025, 4, 2), dt.date(2025, 12, 31)]
)
def test_the_daily_closing_check_tallies_only_the_day_after_the_closing_date(today):
    """2024 takes declarations until 2025-03-31 (policy data): its final tally runs on 2025-04-01 only."""
    reports, sessions = FakeReports(), FakeSessions(year_rows())
    outcome = run(sessions, reports, TallyEvent(kind="closing", checkpoint_seconds=0), today=today)
    assert outcome.status == "not_due" and outcome.year == today.year - 1
    assert sessions.pages_read == 0 and reports.runs == {} and reports.files == {}
    assert continuation_event(TallyEvent(kind="closing"), outcome) is None


def test_a_final_tally_of_a_year_still_open_is_refused():
    with pytest.raises(InvalidFields) as refused:
        run(FakeSessions({}), FakeReports(), TallyEvent(year=2024, final=True), today=dt.date(2025, 3, 31))
    assert refused.value.details == [
        {"field": "final", "message": "2024 takes declarations until 2025-03-31: its final tally runs after that"}
    ]
    outcome = run(FakeSessions({}), FakeReports(), TallyEvent(year=2024, final=True), today=dt.date(2025, 4, 1))
    assert outcome.status == "complete"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (TallyEvent(year=2026), "year"),
        (TallyEvent(year=2025, final=True), "final"),
    ],
)
def test_runs_that_cannot_be_are_refused(event, field):
    with pytest.raises(InvalidFields) as refused:
        run(FakeSessions({}), FakeReports(), event)
    assert [detail["field"] for detail in refused.value.details] == [field]


def test_a_year_before_the_programme_has_no_quota():
    with pytest.raises(InvalidFields):
        run(FakeSessions({}), FakeReports(), TallyEvent(year=2021))


@pytest.mark.parametrize("changes", [{"kind": "nightly", "year": 2024}, {"kind": "closing", "final": True}, {"x": 1}])
def test_events_are_validated(changes):
    with pytest.raises(ValidationError):
        TallyEvent.model_validate(changes)


def test_repairs_are_asked_for_settled_drifts_only():
    rows = {
        0: [
            CounterRow("k1:01", 3, "2024-01-01T00:00:00.000000Z"),  # settled
            CounterRow("k1:02", 3, "2025-03-10T01:29:00.000000Z"),  # touched a minute before the run
        ]
    }
    sessions, reports, metrics = FakeSessions(rows), FakeReports(), RecordedMetrics()
    run(sessions, reports, TallyEvent(year=2024, run_id="r1", repair=True), metrics=metrics)
    assert metrics.events == [("tally_finished", 2, 1)]  # two drifts found, the settled one repaired
    assert sessions.repairs == [
        {
            "patient_key": "k1:01",
            "year": 2024,
            "seen": 3,
            "seen_updated_at": "2024-01-01T00:00:00.000000Z",
            "sessions": 0,
            "run_id": "r1",
            "now": "2025-03-10T01:30:00.000000Z",
        }
    ]
    assert [(d["patient_key"], d["repair"]) for d in reports.report("r1")["drifts"]] == [
        ("k1:01", REPAIRED),
        ("k1:02", TOO_RECENT),
    ]
    sessions.repair_answer = CHANGED_SINCE_READ
    run(sessions, reports, TallyEvent(year=2024, run_id="r2", repair=True))
    assert reports.report("r2")["drifts"][0]["repair"] == CHANGED_SINCE_READ


def test_without_the_repair_flag_nothing_is_written_to_the_counters():
    sessions = FakeSessions({0: [CounterRow("k1:01", 3, "2024-01-01T00:00:00.000000Z")]})
    reports = FakeReports()
    run(sessions, reports)
    assert sessions.repairs == []
    assert reports.report("r1")["drifts"][0]["repair"] is None


def test_progress_is_logged_with_rows_rate_and_shards(caplog):
    caplog.set_level(logging.INFO, logger="test-tally")
    run(FakeSessions(year_rows()), FakeReports(), TallyEvent(year=2024, run_id="r1", progress_seconds=0))
    records = [record for record in caplog.records if record.name == "test-tally"]
    messages = [record.getMessage() for record in records]
    assert messages[0] == "tally started" and messages[-1] == "tally complete"
    assert messages.count("tally shard done") == 16
    progress = [record for record in records if record.getMessage() == "tally progress"]
    assert progress and all(hasattr(record, "rows_per_second") for record in progress)
    done = [record for record in records if record.getMessage() == "tally shard done"]
    assert sorted(record.shards_done for record in done) == list(range(1, 17))
    assert records[-1].rows_read == sum(len(rows) for rows in year_rows().values())
