"""The yearly tally job: read a year's 16 index shards in parallel, checkpoint each shard as it goes, stop cleanly
before the invocation runs out of time, resume in the next invocation, then merge the shards into the report.

Nothing here depends on timing for the figures: shards are tallied independently and merged in a fixed order,
amounts are exact, the run's year, quota and date are fixed in its manifest when it starts, and drifts are
repaired from what the checkpoints hold. A run resumed any number of times writes the same report as a run
that never stopped (its generated_at aside).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from msp.clock import iso
from msp.errors import InvalidFields
from msp.sessions.policy import year_settings
from msp.storage.reports import report_prefix
from msp.storage.sessions import TALLY_SHARDS
from msp.tally.ports import Reports, TallyMetrics, YearSessions
from msp.tally.reports import build_report, latest_pointer, report_files
from msp.tally.rules import REPAIRED, TOO_RECENT, RunPlan, ShardTally, merge_shards, year_quota

RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
MAX_CONTINUATIONS = 40  # 40 invocations of 15 minutes: far beyond any year's tally; a loop stops there


class Log(Protocol):
    def info(self, msg: object, *args: object, **kwargs: Any) -> None: ...

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None: ...


class TallyEvent(BaseModel):
    """What the job is invoked with. Schedules send {"kind": "nightly"} or, every morning, {"kind": "closing"},
    which runs the past year's final tally on the day after its closing date (policy data) and does nothing on
    other days; a person or a continuation sends "manual" with a year (default: this one) and, to resume a
    run, its run_id."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["nightly", "closing", "manual"] = "manual"
    year: int | None = Field(default=None, ge=2000, le=9999)
    run_id: RunId | None = None
    final: bool = False
    repair: bool = False
    # Operations: rows per index page (default: DynamoDB's 1 MB pages), seconds between a shard's checkpoints,
    # how long a counter must have been left alone before a drift on it is repaired, time kept in hand
    # before the invocation's timeout.
    page_size: int | None = Field(default=None, ge=1, le=10_000)
    checkpoint_seconds: float = Field(default=30, ge=0)
    settle_seconds: int = Field(default=300, ge=0)
    stop_margin_seconds: float = Field(default=60, ge=0)
    progress_seconds: float = Field(default=10, ge=0)
    continuation: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _scheduled_runs_pick_their_year(self) -> TallyEvent:
        if self.kind != "manual" and (self.year is not None or self.final):
            raise ValueError("nightly and closing runs choose their year and finality themselves")
        return self


class TallyOutcome(BaseModel):
    status: Literal["complete", "incomplete", "not_due"]
    run_id: str
    year: int
    shards_done: int
    shards: int = TALLY_SHARDS
    rows_read: int  # by this invocation
    seconds: float
    report: str | None = None
    totals: dict[str, Any] | None = None


def run_identity(event: TallyEvent, today: dt.date, now: dt.datetime) -> tuple[int, str]:
    """The year and run id an event names. Scheduled runs are named after their day, so a retry or a
    continuation the same day finds the run's checkpoints; a manual run is new unless given its run_id."""
    if event.kind == "nightly":
        return today.year, event.run_id or f"nightly-{today.isoformat()}"
    if event.kind == "closing":
        return today.year - 1, event.run_id or f"final-{today.isoformat()}"
    return event.year or today.year, event.run_id or f"manual-{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}"


def closing_due(year: int, today: dt.date) -> bool:
    """Whether the scheduled closing run tallies `year` today: the first day after its closing date."""
    return today == year_settings().closing_date(year) + dt.timedelta(days=1)


def new_plan(event: TallyEvent, year: int, run_id: str, today: dt.date, started_at: str) -> RunPlan:
    problems = []
    final = event.kind == "closing" or event.final
    closing = year_settings().closing_date(year)
    if year > today.year:
        problems.append({"field": "year", "message": f"{year} has not started yet"})
    elif final and today <= closing:
        message = f"{year} takes declarations until {closing.isoformat()}: its final tally runs after that"
        problems.append({"field": "final", "message": message})
    if problems:
        raise InvalidFields("The tally cannot run as asked.", details=problems)
    last_day = dt.date(year, 12, 31)
    as_of = last_day if final else min(today, last_day)
    return RunPlan(
        run_id=run_id,
        year=year,
        as_of=as_of,
        quota=year_quota(year, as_of),
        final=final,
        repair=event.repair,
        started_at=started_at,
        settle_seconds=event.settle_seconds,
    )


def continuation_event(event: TallyEvent, outcome: TallyOutcome) -> dict[str, Any] | None:
    """The event that resumes an incomplete run in a new invocation; None once continuations run out."""
    if outcome.status != "incomplete" or event.continuation >= MAX_CONTINUATIONS:
        return None
    return event.model_dump(mode="json", exclude={"kind", "year", "run_id", "final", "continuation"}) | {
        "kind": "manual",
        "year": outcome.year,
        "run_id": outcome.run_id,
        "continuation": event.continuation + 1,
    }


class _Progress:
    """Rows read and shards done by this invocation, logged every few seconds and at each shard's end."""

    def __init__(self, log: Log, plan: RunPlan, shards_done: int, every: float):
        self.log, self.plan, self.every = log, plan, every
        self.lock = threading.Lock()
        self.rows = 0
        self.shards_done = shards_done
        self.started = self.logged = time.monotonic()

    def fields(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "run_id": self.plan.run_id,
            "year": self.plan.year,
            "shards_done": self.shards_done,
            "shards": TALLY_SHARDS,
            "rows_read": self.rows,
            "rows_per_second": round(self.rows / elapsed) if elapsed > 0 else 0,
            "elapsed_seconds": round(elapsed, 2),
        }

    def read(self, rows: int) -> None:
        with self.lock:
            self.rows += rows
            now = time.monotonic()
            due = now - self.logged >= self.every
            if due:
                self.logged = now
                fields = self.fields()
        if due:
            self.log.info("tally progress", extra=fields)

    def shard_done(self, shard: int) -> None:
        with self.lock:
            self.shards_done += 1
            fields = self.fields() | {"shard": shard}
        self.log.info("tally shard done", extra=fields)


class _Run:
    def __init__(
        self,
        sessions: YearSessions,
        reports: Reports,
        plan: RunPlan,
        event: TallyEvent,
        out_of_time: Callable[[], bool],
        progress: _Progress,
    ):
        self.sessions, self.reports, self.plan, self.event = sessions, reports, plan, event
        self.out_of_time = out_of_time
        self.progress = progress
        self.stop = threading.Event()

    def save(self, shard: int, tally: ShardTally, last_key: dict[str, Any] | None, done: bool) -> dict[str, Any]:
        checkpoint = {"shard": shard, "done": done, "last_key": last_key, "state": tally.to_state()}
        self.reports.save_checkpoint(self.plan.year, self.plan.run_id, shard, checkpoint)
        return checkpoint

    def tally_shard(self, shard: int, checkpoint: dict[str, Any] | None) -> dict[str, Any]:
        """Read one shard from its checkpoint on; the checkpoint it leaves (done, or where to resume)."""
        if checkpoint is None:
            tally, start_key = ShardTally(self.plan.quota), None
        else:
            tally, start_key = ShardTally.from_state(checkpoint["state"]), checkpoint["last_key"]
        saved_at = time.monotonic()
        pages = self.sessions.year_pages(self.plan.year, shard, start_key, self.event.page_size)
        for rows, last_key in pages:
            tally.add(rows)
            self.progress.read(len(rows))
            if last_key is None:
                tally.finish()
                checkpoint = self.save(shard, tally, None, done=True)
                self.progress.shard_done(shard)
                return checkpoint
            if self.stop.is_set() or self.out_of_time():
                self.stop.set()
                return self.save(shard, tally, last_key, done=False)
            if time.monotonic() - saved_at >= self.event.checkpoint_seconds:
                self.save(shard, tally, last_key, done=False)
                saved_at = time.monotonic()
        raise RuntimeError("the index reader ended without a last page")

    def tally_shards(self, checkpoints: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        pending = [shard for shard in range(TALLY_SHARDS) if not checkpoints.get(shard, {}).get("done")]
        results = {shard: checkpoints[shard] for shard in range(TALLY_SHARDS) if shard not in pending}
        errors: list[BaseException] = []
        if pending:
            with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="tally-shard") as pool:
                futures = {pool.submit(self.tally_shard, shard, checkpoints.get(shard)): shard for shard in pending}
                for future in as_completed(futures):
                    try:
                        results[futures[future]] = future.result()
                    except BaseException as error:  # the other shards save where they are and stop
                        self.stop.set()
                        errors.append(error)
        if errors:
            raise errors[0]
        return results

    def repair(self, drifts: list[dict[str, Any]], now: Callable[[], dt.datetime]) -> dict[str, str]:
        outcomes = {}
        for drift in drifts:
            if not self.plan.repairable(drift):
                outcomes[drift["patient_key"]] = TOO_RECENT
                continue
            outcomes[drift["patient_key"]] = self.sessions.repair_counter(
                drift["patient_key"],
                self.plan.year,
                seen=drift["counter"],
                seen_updated_at=drift["counter_updated_at"],
                sessions=drift["sessions"],
                run_id=self.plan.run_id,
                now=iso(now()),
            )
        return outcomes


def _shards_done(checkpoints: dict[int, dict[str, Any]]) -> int:
    return sum(1 for checkpoint in checkpoints.values() if checkpoint.get("done"))


def _already_complete(manifest: dict[str, Any], year: int, run_id: str) -> TallyOutcome:
    """A run asked again once complete (a retried or duplicated invocation) answers what it found then."""
    return TallyOutcome(
        status="complete",
        run_id=run_id,
        year=year,
        shards_done=TALLY_SHARDS,
        rows_read=0,
        seconds=0.0,
        report=manifest["report"],
        totals=manifest["totals"],
    )


def _open_run(
    reports: Reports,
    event: TallyEvent,
    identity: tuple[int, str],
    checkpoints: dict[int, dict[str, Any]],
    manifest: dict[str, Any] | None,
    *,
    today: dt.date,
    now: Callable[[], dt.datetime],
    log: Log,
) -> tuple[RunPlan, dict[str, Any]]:
    """A new run's plan, saved before anything is read; or the plan of the run being resumed."""
    year, run_id = identity
    if manifest is None:
        plan = new_plan(event, year, run_id, today, iso(now()))
        manifest = {"plan": plan.to_state(), "status": "running"}
        reports.save_run(year, run_id, manifest)
        log.info("tally started", extra=plan.to_state())
        return plan, manifest
    plan = RunPlan.from_state(manifest["plan"])
    done = _shards_done(checkpoints)
    log.info(
        "tally resumed",
        extra=plan.to_state()
        | {"shards_done": done, "checkpoints": len(checkpoints), "continuation": event.continuation},
    )
    return plan, manifest


def _complete_run(
    run: _Run, results: dict[int, dict[str, Any]], manifest: dict[str, Any], now: Callable[[], dt.datetime], log: Log
) -> tuple[str, dict[str, Any]]:
    """Merge the shards, repair if asked, write the report and mark the run complete: its prefix and totals."""
    plan, reports = run.plan, run.reports
    merged = merge_shards(
        (ShardTally.from_state(results[shard]["state"]).tally for shard in range(TALLY_SHARDS)), plan.quota
    )
    repairs = run.repair(merged.drifts, now) if plan.repair else None
    report = build_report(merged, plan, generated_at=iso(now()), repairs=repairs)
    reports.write_report(plan.year, plan.run_id, report_files(report))
    prefix = report_prefix(plan.year, plan.run_id)
    reports.set_latest(plan.year, latest_pointer(report, prefix))
    totals = report.totals.model_dump(mode="json", include={"sessions", "patients", "psychologists", "drifts"})
    if repairs is not None:
        totals["repaired"] = sum(1 for value in repairs.values() if value == REPAIRED)
    reports.save_run(plan.year, plan.run_id, manifest | {"status": "complete", "report": prefix, "totals": totals})
    if merged.drifts:
        log.warning("tally found counters that disagree with their sessions", extra={"run_id": plan.run_id, **totals})
    log.info("tally complete", extra=run.progress.fields() | {"report": prefix, **totals})
    return prefix, totals


def run_tally(
    sessions: YearSessions,
    reports: Reports,
    event: TallyEvent,
    *,
    today: dt.date,
    now: Callable[[], dt.datetime],
    remaining_ms: Callable[[], int],
    log: Log,
    metrics: TallyMetrics,
) -> TallyOutcome:
    """Tally a year, or go on with a run already started, as far as the time left allows. The invocation that
    completes the run counts it in `metrics`; a run found complete already is not counted again."""
    started = time.monotonic()
    year, run_id = run_identity(event, today, now())
    if event.kind == "closing" and not closing_due(year, today):
        return TallyOutcome(status="not_due", run_id=run_id, year=year, shards_done=0, rows_read=0, seconds=0.0)
    manifest, checkpoints = reports.run_state(year, run_id)
    if manifest is not None and manifest.get("status") == "complete":
        log.info("tally already complete", extra={"run_id": run_id, "year": year})
        return _already_complete(manifest, year, run_id)
    plan, manifest = _open_run(reports, event, (year, run_id), checkpoints, manifest, today=today, now=now, log=log)
    margin_ms = event.stop_margin_seconds * 1000

    def out_of_time() -> bool:
        return remaining_ms() < margin_ms

    progress = _Progress(log, plan, _shards_done(checkpoints), event.progress_seconds)
    run = _Run(sessions, reports, plan, event, out_of_time, progress)
    results = run.tally_shards(checkpoints)
    shards_done = _shards_done(results)

    def outcome(status: Literal["complete", "incomplete"], **extra: Any) -> TallyOutcome:
        return TallyOutcome(
            status=status,
            run_id=run_id,
            year=year,
            shards_done=shards_done,
            rows_read=progress.rows,
            seconds=round(time.monotonic() - started, 3),
            **extra,
        )

    if shards_done < TALLY_SHARDS or out_of_time():
        log.info("tally stopped before the timeout, to resume", extra=progress.fields())
        return outcome("incomplete")
    prefix, totals = _complete_run(run, results, manifest, now, log)
    metrics.tally_finished(totals["drifts"], totals.get("repaired"))
    return outcome("complete", report=prefix, totals=totals)
