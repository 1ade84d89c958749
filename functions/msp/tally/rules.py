"""The yearly tally, the pure part: counting one year's sessions per patient, psychologist, department, month
and policy rule, and reconciling each patient's counter with the sessions it counted.

Storage reads the year from the ByYear index one shard at a time, each shard listing every patient's counter
followed by their sessions (see SessionsTable in template.yaml). A ShardTally takes those rows in that order,
closes a patient when the next one starts, and can be saved and restored at any point (to_state/from_state),
so a job stopped midway resumes where its checkpoint left it. Shards share no patient: their tallies merge
by adding up, except the set of psychologists of each department, which merges by union.

Amounts are integer cents here, exact whatever the order of additions; the report turns them into euros.
Patients appear only as their pseudonymous key, never more.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from msp.sessions import policy
from msp.sessions.policy import Rule

UNKNOWN_DEPARTMENT = ""  # sessions of a psychologist whose convention names no department


@dataclass(frozen=True, slots=True)
class SessionRow:
    """What the tally needs of a stored session."""

    patient_key: str
    psychologist_sub: str
    department: str
    date: str  # ISO date, Europe/Paris calendar
    kind: str  # assessment or follow_up
    situation: str | None
    price: int  # cents
    amo: int
    amc: int
    state: int
    patient_advance: int
    rule_valid_from: str

    def as_list(self) -> list[Any]:
        return [
            self.patient_key,
            self.psychologist_sub,
            self.department,
            self.date,
            self.kind,
            self.situation,
            self.price,
            self.amo,
            self.amc,
            self.state,
            self.patient_advance,
            self.rule_valid_from,
        ]


@dataclass(frozen=True, slots=True)
class CounterRow:
    """A patient's counter for the year: the sessions the declarations counted."""

    patient_key: str
    used: int
    updated_at: str


Row = SessionRow | CounterRow


def year_quota(year: int, as_of: dt.date, rules: Sequence[Rule] | None = None) -> int:
    """The quota a patient's year is measured against: the rule a session held on `as_of` (or, for a past
    year, on its last day) would count under, as GET /v1/sessions/quota answers. In 2024 that is 12,
    although sessions before 15 June were capped at 8."""
    return policy.rule_for(min(as_of, dt.date(year, 12, 31)), rules).sessions_per_year


# Sums kept per group, in this order.
SESSIONS, TOTAL, AMO, AMC, STATE, ADVANCE, TIERS_PAYANT_SESSIONS, TIERS_PAYANT_TOTAL = range(8)
_SUMS = 8
NO_SITUATION = "none"  # the key of sessions declared without a situation


class Group:
    """Sessions and amounts of one department, psychologist, month or rule, with its distinct patients, and
    its sessions by kind and by situation.

    `members` holds the psychologists of a department, or the departments of a psychologist.
    """

    __slots__ = ("at_quota", "kinds", "members", "one_left", "patients", "situations", "sums")

    def __init__(self) -> None:
        self.sums = [0] * _SUMS
        self.patients = 0
        self.at_quota = 0
        self.one_left = 0
        self.members: set[str] = set()
        self.kinds: Counter[str] = Counter()
        self.situations: Counter[str] = Counter()

    def add(self, row: SessionRow) -> None:
        sums = self.sums
        sums[SESSIONS] += 1
        sums[TOTAL] += row.price
        sums[AMO] += row.amo
        sums[AMC] += row.amc
        sums[STATE] += row.state
        sums[ADVANCE] += row.patient_advance
        if row.patient_advance == 0:  # tiers payant: the payers were billed directly
            sums[TIERS_PAYANT_SESSIONS] += 1
            sums[TIERS_PAYANT_TOTAL] += row.price
        self.kinds[row.kind] += 1
        self.situations[row.situation or NO_SITUATION] += 1

    def merge(self, other: Group) -> None:
        for index in range(_SUMS):
            self.sums[index] += other.sums[index]
        self.patients += other.patients
        self.at_quota += other.at_quota
        self.one_left += other.one_left
        self.members |= other.members
        self.kinds.update(other.kinds)
        self.situations.update(other.situations)

    def to_state(self) -> list[Any]:
        return [
            *self.sums,
            self.patients,
            self.at_quota,
            self.one_left,
            sorted(self.members),
            dict(sorted(self.kinds.items())),
            dict(sorted(self.situations.items())),
        ]

    @classmethod
    def from_state(cls, state: list[Any]) -> Group:
        group = cls()
        group.sums = [int(value) for value in state[:_SUMS]]
        group.patients, group.at_quota, group.one_left = (int(value) for value in state[_SUMS : _SUMS + 3])
        group.members = set(state[_SUMS + 3])
        group.kinds = Counter({key: int(value) for key, value in state[_SUMS + 4].items()})
        group.situations = Counter({key: int(value) for key, value in state[_SUMS + 5].items()})
        return group


def _group(groups: dict[str, Group], key: str) -> Group:
    group = groups.get(key)
    if group is None:
        group = groups[key] = Group()
    return group


@dataclass
class Tally:
    """Everything counted so far, in one shard or, once merged, in the whole year."""

    quota: int
    departments: dict[str, Group] = field(default_factory=dict)
    psychologists: dict[str, Group] = field(default_factory=dict)
    months: dict[str, Group] = field(default_factory=dict)
    rules: dict[str, Group] = field(default_factory=dict)
    total: Group = field(default_factory=Group)
    distribution: Counter = field(default_factory=Counter)  # sessions in the year -> patients
    near_quota: list[dict[str, Any]] = field(default_factory=list)
    drifts: list[dict[str, Any]] = field(default_factory=list)
    counters: int = 0
    # Sessions by department then month: what the open statistics publish, month by month.
    department_months: dict[str, Counter] = field(default_factory=dict)

    def merge(self, other: Tally) -> None:
        if other.quota != self.quota:
            raise ValueError("cannot merge tallies measured against different quotas")
        for mine, theirs in (
            (self.departments, other.departments),
            (self.psychologists, other.psychologists),
            (self.months, other.months),
            (self.rules, other.rules),
        ):
            for key, group in theirs.items():
                _group(mine, key).merge(group)
        self.total.merge(other.total)
        self.distribution.update(other.distribution)
        self.near_quota.extend(other.near_quota)
        self.drifts.extend(other.drifts)
        self.counters += other.counters
        for department, months in other.department_months.items():
            self.department_months.setdefault(department, Counter()).update(months)

    def to_state(self) -> dict[str, Any]:
        return {
            "quota": self.quota,
            "departments": {key: group.to_state() for key, group in sorted(self.departments.items())},
            "psychologists": {key: group.to_state() for key, group in sorted(self.psychologists.items())},
            "months": {key: group.to_state() for key, group in sorted(self.months.items())},
            "rules": {key: group.to_state() for key, group in sorted(self.rules.items())},
            "total": self.total.to_state(),
            "distribution": {str(key): value for key, value in sorted(self.distribution.items())},
            "near_quota": self.near_quota,
            "drifts": self.drifts,
            "counters": self.counters,
            "department_months": {
                department: dict(sorted(months.items()))
                for department, months in sorted(self.department_months.items())
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tally:
        def groups(name: str) -> dict[str, Group]:
            return {key: Group.from_state(value) for key, value in state[name].items()}

        return cls(
            quota=int(state["quota"]),
            departments=groups("departments"),
            psychologists=groups("psychologists"),
            months=groups("months"),
            rules=groups("rules"),
            total=Group.from_state(state["total"]),
            distribution=Counter({int(key): int(value) for key, value in state["distribution"].items()}),
            near_quota=list(state["near_quota"]),
            drifts=list(state["drifts"]),
            counters=int(state["counters"]),
            department_months={
                department: Counter({month: int(count) for month, count in months.items()})
                for department, months in state["department_months"].items()
            },
        )


class ShardTally:
    """Tallies one shard's rows, in the index's order: a patient's counter, then that patient's sessions.

    A patient is complete when the next patient's first row arrives (or at `finish`); until then their rows
    wait in `open_rows`, which the saved state keeps, so a checkpoint may fall in the middle of a patient.
    """

    def __init__(self, quota: int):
        self.tally = Tally(quota=quota)
        self.open_patient: str | None = None
        self.open_counter: CounterRow | None = None
        self.open_rows: list[SessionRow] = []
        self.rows_read = 0

    def add(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.rows_read += 1
            if row.patient_key != self.open_patient:
                self._close_patient()
                self.open_patient = row.patient_key
            if isinstance(row, CounterRow):
                self.open_counter = row
                self.tally.counters += 1
            else:
                self.open_rows.append(row)

    def finish(self) -> Tally:
        self._close_patient()
        return self.tally

    def _close_patient(self) -> None:
        patient, counter, rows = self.open_patient, self.open_counter, self.open_rows
        self.open_patient, self.open_counter, self.open_rows = None, None, []
        if patient is None:
            return
        self._note_drift(patient, counter, len(rows))
        if rows:
            self._count_patient(patient, rows)

    def _note_drift(self, patient: str, counter: CounterRow | None, sessions: int) -> None:
        """A counter that does not hold the patient's sessions (or is missing) is a drift to repair."""
        counted = counter.used if counter is not None else None
        if (counted or 0) != sessions:
            self.tally.drifts.append(
                {
                    "patient_key": patient,
                    "counter": counted,
                    "sessions": sessions,
                    "counter_updated_at": (counter.updated_at or None) if counter is not None else None,
                }
            )

    def _count_patient(self, patient: str, rows: list[SessionRow]) -> None:
        """The patient's sessions into every group they fall in, and the patient once into each of those groups."""
        tally, sessions = self.tally, len(rows)
        quota = tally.quota
        at_quota, one_left = sessions >= quota, sessions == quota - 1
        departments: set[str] = set()
        psychologists: set[str] = set()
        months: set[str] = set()
        rules: set[str] = set()
        for row in rows:
            department = _group(tally.departments, row.department)
            department.add(row)
            department.members.add(row.psychologist_sub)
            psychologist = _group(tally.psychologists, row.psychologist_sub)
            psychologist.add(row)
            psychologist.members.add(row.department)
            _group(tally.months, row.date[:7]).add(row)
            _group(tally.rules, row.rule_valid_from).add(row)
            tally.department_months.setdefault(row.department, Counter())[row.date[:7]] += 1
            tally.total.add(row)
            departments.add(row.department)
            psychologists.add(row.psychologist_sub)
            months.add(row.date[:7])
            rules.add(row.rule_valid_from)
        for groups, keys in (
            (tally.departments, departments),
            (tally.psychologists, psychologists),
            (tally.months, months),
            (tally.rules, rules),
            ({"": tally.total}, {""}),
        ):
            for key in keys:
                group = groups[key]
                group.patients += 1
                group.at_quota += at_quota
                group.one_left += one_left
        tally.distribution[sessions] += 1
        if at_quota or one_left:
            tally.near_quota.append(
                {
                    "patient_key": patient,
                    "sessions": sessions,
                    "quota": quota,
                    "remaining": max(quota - sessions, 0),
                    "status": "at_quota" if at_quota else "one_left",
                    "departments": sorted(departments),
                    "last_session": max(row.date for row in rows),
                }
            )

    def to_state(self) -> dict[str, Any]:
        counter = self.open_counter
        return {
            "tally": self.tally.to_state(),
            "open_patient": self.open_patient,
            "open_counter": None if counter is None else [counter.patient_key, counter.used, counter.updated_at],
            "open_rows": [row.as_list() for row in self.open_rows],
            "rows_read": self.rows_read,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ShardTally:
        tally = Tally.from_state(state["tally"])
        shard = cls(tally.quota)
        shard.tally = tally
        shard.open_patient = state["open_patient"]
        counter = state["open_counter"]
        shard.open_counter = None if counter is None else CounterRow(counter[0], int(counter[1]), counter[2])
        shard.open_rows = [SessionRow(*values) for values in state["open_rows"]]
        shard.rows_read = int(state["rows_read"])
        return shard


def merge_shards(tallies: Iterable[Tally], quota: int) -> Tally:
    """The year's tally from its shards' (in any order: the result is the same)."""
    merged = Tally(quota=quota)
    for tally in tallies:
        merged.merge(tally)
    merged.near_quota.sort(key=lambda entry: entry["patient_key"])
    merged.drifts.sort(key=lambda entry: entry["patient_key"])
    return merged


# ---------------------------------------------------------------- what a run tallies

REPAIRED, CHANGED_SINCE_READ, TOO_RECENT = "repaired", "changed_since_read", "too_recent"
RepairOutcome = str


@dataclass(frozen=True)
class RunPlan:
    """One run of the tally, fixed when it starts and kept with its checkpoints: a resumed run tallies the
    same year against the same quota, whatever the clock says when it resumes."""

    run_id: str
    year: int
    as_of: dt.date
    quota: int
    final: bool
    repair: bool
    started_at: str
    settle_seconds: int

    def to_state(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "year": self.year,
            "as_of": self.as_of.isoformat(),
            "quota": self.quota,
            "final": self.final,
            "repair": self.repair,
            "started_at": self.started_at,
            "settle_seconds": self.settle_seconds,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RunPlan:
        return cls(
            run_id=state["run_id"],
            year=int(state["year"]),
            as_of=dt.date.fromisoformat(state["as_of"]),
            quota=int(state["quota"]),
            final=bool(state["final"]),
            repair=bool(state["repair"]),
            started_at=state["started_at"],
            settle_seconds=int(state["settle_seconds"]),
        )

    def repairable(self, drift: dict[str, Any]) -> bool:
        """Whether a drift has settled: its counter last changed `settle_seconds` before the run started.

        Every declaration and cancellation stamps the counter's updated_at in the same transaction as the
        session it adds or removes. A counter untouched since well before the run therefore had no session
        added or removed since, and the index (eventually consistent) has long shown them all: the drift is
        real. A counter touched lately may only look drifted because the index lags: it is left alone.
        A missing counter has no date: it is repaired only if it is still missing (conditional write).
        """
        updated_at = drift.get("counter_updated_at")
        if updated_at is None:
            return True
        started = dt.datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
        changed = dt.datetime.fromisoformat(updated_at.replace("Z", "+00:00"))
        return changed <= started - dt.timedelta(seconds=self.settle_seconds)
