"""The tally's pure part: per-patient reconciliation, aggregates, saving and resuming, merging shards."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msp.errors import InvalidFields
from msp.tally.rules import (
    SESSIONS,
    STATE,
    TIERS_PAYANT_SESSIONS,
    TIERS_PAYANT_TOTAL,
    TOTAL,
    CounterRow,
    RunPlan,
    SessionRow,
    ShardTally,
    Tally,
    merge_shards,
    year_quota,
)


def session(
    patient="k1:aa",
    psychologist="psy-1",
    department="75",
    date="2024-03-01",
    price=3000,
    reason=None,
    kind="follow_up",
):
    amo = price * 60 // 100
    advance = 0 if reason else price
    return SessionRow(
        patient, psychologist, department, date, kind, reason, price, amo, price - amo, 0, advance, "2022-04-05"
    )


def test_groups_count_sessions_by_kind_and_situation_and_the_states_share():
    ame = SessionRow("k1:bb", "psy-1", "75", "2024-07-02", "assessment", "ame", 5000, 0, 0, 5000, 0, "2024-06-15")
    rows = [
        counter(used=2),
        session(kind="assessment", price=4000),
        session(date="2024-03-20", reason="css"),
        counter("k1:bb", used=1),
        ame,
    ]
    tally = tally_of(rows)
    for group in (tally.total, tally.departments["75"], tally.psychologists["psy-1"]):
        assert dict(group.kinds) == {"assessment": 2, "follow_up": 1}
        assert dict(group.situations) == {"none": 1, "css": 1, "ame": 1}
        assert group.sums[STATE] == 5000
    assert dict(tally.months["2024-07"].situations) == {"ame": 1}
    restored = Tally.from_state(json.loads(json.dumps(tally.to_state())))
    assert dict(restored.total.kinds) == dict(tally.total.kinds)
    assert dict(restored.months["2024-03"].situations) == {"none": 1, "css": 1}


def counter(patient="k1:aa", used=1, updated_at="2024-03-01T12:00:00Z"):
    return CounterRow(patient, used, updated_at)


def tally_of(rows, quota=12) -> Tally:
    shard = ShardTally(quota)
    shard.add(rows)
    return shard.finish()


def test_year_quota_is_the_rule_of_the_last_day_or_of_today():
    assert year_quota(2023, dt.date(2026, 1, 1)) == 8
    assert year_quota(2024, dt.date(2026, 1, 1)) == 12  # 8 until 14 June, 12 from 15 June
    assert year_quota(2024, dt.date(2024, 6, 14)) == 8
    assert year_quota(2024, dt.date(2024, 6, 15)) == 12
    with pytest.raises(InvalidFields):
        year_quota(2021, dt.date(2026, 1, 1))


def test_a_patient_counts_once_per_group_and_sums_are_exact():
    rows = [
        counter(used=3),
        session(date="2024-03-01", price=4000),
        session(date="2024-03-20", psychologist="psy-2", department="92", reason="css"),
        session(date="2024-07-01", price=5000),
    ]
    tally = tally_of(rows)
    assert tally.total.patients == 1
    assert tally.total.sums[SESSIONS] == 3
    assert tally.total.sums[TOTAL] == 12000
    assert tally.total.sums[TIERS_PAYANT_SESSIONS] == 1
    assert tally.total.sums[TIERS_PAYANT_TOTAL] == 3000
    assert {code: group.patients for code, group in tally.departments.items()} == {"75": 1, "92": 1}
    assert {code: group.sums[SESSIONS] for code, group in tally.departments.items()} == {"75": 2, "92": 1}
    assert tally.departments["75"].members == {"psy-1"}
    assert tally.psychologists["psy-2"].members == {"92"}
    assert {month: group.patients for month, group in tally.months.items()} == {"2024-03": 1, "2024-07": 1}
    assert tally.months["2024-03"].sums[SESSIONS] == 2
    assert tally.department_months == {"75": {"2024-03": 1, "2024-07": 1}, "92": {"2024-03": 1}}
    assert dict(tally.distribution) == {3: 1}
    assert tally.drifts == [] and tally.counters == 1


@pytest.mark.parametrize(
    ("rows", "drift"),
    [
        ([counter(used=5), session(), session()], {"counter": 5, "sessions": 2}),
        ([counter(used=1), session(), session()], {"counter": 1, "sessions": 2}),
        ([session(), session()], {"counter": None, "sessions": 2}),
        ([counter(used=2)], {"counter": 2, "sessions": 0}),
    ],
)
def test_a_counter_disagreeing_with_its_sessions_is_a_drift(rows, drift):
    tally = tally_of(rows)
    (found,) = tally.drifts
    assert found["patient_key"] == "k1:aa"
    assert {key: found[key] for key in drift} == drift
    if drift["counter"] is None:
        assert found["counter_updated_at"] is None


def test_a_counter_back_to_zero_without_sessions_is_neither_a_patient_nor_a_drift():
    tally = tally_of([counter(used=0)])
    assert tally.drifts == [] and tally.total.patients == 0 and tally.counters == 1


def test_patients_at_quota_and_one_session_from_it():
    rows = []
    for patient, sessions in (("k1:a1", 12), ("k1:a2", 11), ("k1:a3", 10)):
        rows.append(counter(patient, sessions))
        rows.extend(session(patient, date=f"2024-{month + 1:02d}-02") for month in range(sessions))
    tally = tally_of(rows, quota=12)
    assert (tally.total.at_quota, tally.total.one_left) == (1, 1)
    assert [(e["patient_key"], e["status"], e["remaining"]) for e in tally.near_quota] == [
        ("k1:a1", "at_quota", 0),
        ("k1:a2", "one_left", 1),
    ]
    assert tally.near_quota[0]["last_session"] == "2024-12-02"
    assert tally.departments["75"].at_quota == 1 and tally.departments["75"].one_left == 1
    assert dict(tally.distribution) == {12: 1, 11: 1, 10: 1}


def test_the_quota_measured_against_is_the_runs():
    rows = [counter(used=8), *(session(date=f"2024-0{m}-01") for m in range(1, 9))]
    assert tally_of(rows, quota=8).total.at_quota == 1
    assert tally_of(rows, quota=12).total.at_quota == 0


def _random_shard(seed: int, patients: int = 30) -> list:
    draw = random.Random(seed)
    rows = []
    for number in range(patients):
        key = f"k1:{seed:04x}{number:04x}"  # shards never share a patient
        sessions = draw.randint(0, 13)
        if draw.random() < 0.9:
            rows.append(counter(key, sessions if draw.random() < 0.9 else sessions + 1))
        for _ in range(sessions):
            rows.append(
                session(
                    key,
                    psychologist=f"psy-{draw.randint(1, 5)}",
                    department=draw.choice(["75", "92", "2A", "971", ""]),
                    date=f"2024-{draw.randint(1, 12):02d}-{draw.randint(1, 28):02d}",
                    price=draw.choice([3000, 4000, 5000]),
                    reason=draw.choice([None, None, "css", "ald"]),
                )
            )
    return rows


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_saving_anywhere_and_resuming_gives_the_same_tally(seed, cuts):
    rows = _random_shard(seed)
    expected = tally_of(rows).to_state()
    shard, position = ShardTally(12), 0
    for cut in sorted({min(cut, len(rows)) for cut in cuts}):
        shard.add(rows[position:cut])
        position = cut
        shard = ShardTally.from_state(json.loads(json.dumps(shard.to_state())))  # through a checkpoint
    shard.add(rows[position:])
    assert shard.finish().to_state() == expected


def test_merging_shards_in_any_order_gives_the_same_year():
    tallies = [tally_of(_random_shard(seed)) for seed in range(5)]
    forward = merge_shards(tallies, 12).to_state()
    states = [json.loads(json.dumps(tally.to_state())) for tally in reversed(tallies)]
    backward = merge_shards([Tally.from_state(state) for state in states], 12).to_state()
    assert forward == backward
    assert forward["near_quota"] == sorted(forward["near_quota"], key=lambda entry: entry["patient_key"])


def test_psychologists_of_a_department_merge_by_union():
    first = tally_of([counter("k1:01", 1), session("k1:01", psychologist="psy-1")])
    second = tally_of([counter("k1:02", 1), session("k1:02", psychologist="psy-1")])
    merged = merge_shards([first, second], 12)
    assert merged.departments["75"].members == {"psy-1"}
    assert merged.departments["75"].patients == 2


def test_tallies_against_different_quotas_do_not_merge():
    with pytest.raises(ValueError, match="different quotas"):
        merge_shards([Tally(quota=8)], 12)


def _plan(**changes) -> RunPlan:
    fields = {
        "run_id": "r1",
        "year": 2024,
        "as_of": dt.date(2024, 12, 31),
        "quota": 12,
        "final": True,
        "repair": True,
        "started_at": "2025-01-01T05:00:00.000000Z",
        "settle_seconds": 300,
    }
    return RunPlan(**(fields | changes))


def test_a_run_plan_survives_its_manifest():
    plan = _plan()
    assert RunPlan.from_state(json.loads(json.dumps(plan.to_state()))) == plan


@pytest.mark.parametrize(
    ("updated_at", "repairable"),
    [
        ("2025-01-01T04:54:59.000000Z", True),
        ("2025-01-01T04:55:00.000000Z", True),
        ("2025-01-01T04:55:01.000000Z", False),
        ("2025-01-01T05:30:00.000000Z", False),
        (None, True),
    ],
)
def test_only_drifts_on_counters_left_alone_before_the_run_are_repaired(updated_at, repairable):
    assert _plan().repairable({"counter_updated_at": updated_at}) is repairable
