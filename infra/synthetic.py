"""Synthetic sessions for one year, for `make tally SYNTHETIC=n`, the tally tests and `make bench`.

Made-up patients (well-formed NIRs of nobody in particular, turned into patient keys with the stack's key like
any declaration), psychologists (`<tag>-psy-0001`...) and their departments, deterministic for a seed. Each
patient's sessions respect the quota in force on each date (8 before 2024-06-15, 12 from then on), so they
could all have been declared. The plan is plain data: tests compute their expected figures from it on their
own, then compare them with the tally's.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from msp.sessions import policy
from msp.sessions.nir import control_key
from msp.sessions.rules import PatientKeyring, SessionRecord, SessionRequest

# Where the synthetic psychologists practise, most in a few big departments, with Corsica and overseas.
DEPARTMENTS = ["75", "92", "93", "13", "69", "59", "33", "31", "06", "2A", "2B", "971", "974", "01", "44"]
SITUATIONS = ["css", "ame", "ald", "maternite", "at_mp", "accident_tiers"]
_NAMESPACE = uuid.UUID("0d9a3f4e-5c1b-4f7e-9a26-7b8c1e2d3f40")


@dataclass(frozen=True)
class PlannedSession:
    patient: int
    nir: str
    birth_date: dt.date
    psychologist: str
    date: dt.date
    ordinal: int  # the patient's count for the year with this session: 1 is the assessment
    situation: str | None
    session_id: str


@dataclass
class SyntheticYear:
    year: int
    tag: str
    psychologists: dict[str, str | None] = field(default_factory=dict)  # sub -> department of the convention
    sessions: list[PlannedSession] = field(default_factory=list)

    def department_of(self, session: PlannedSession) -> str | None:
        return self.psychologists[session.psychologist]


def synthetic_nir(patient: int, birth: dt.date) -> str:
    """A well-formed NIR, distinct for each patient number (birth place and order number from it)."""
    place_department = [d for d in range(1, 96) if d != 20][patient % 94]
    commune = 1 + (patient // 94) % 999
    order = 1 + (patient // (94 * 999)) % 999
    first_13 = f"{1 + patient % 2}{birth.year % 100:02d}{birth.month:02d}{place_department:02d}{commune:03d}{order:03d}"
    return f"{first_13}{control_key(first_13):02d}"


def _sessions_wanted(draw: random.Random, quota: int) -> int:
    """How many sessions a patient comes to: mostly a few, some up to the quota and a few beyond (the
    excess is dropped where the quota would refuse it)."""
    roll = draw.random()
    if roll < 0.55:
        return draw.randint(1, 4)
    if roll < 0.8:
        return draw.randint(5, quota - 2)
    if roll < 0.9:
        return quota - 1
    return quota + draw.randint(0, 3)


def plan_year(
    year: int,
    sessions: int,
    *,
    seed: int = 1,
    tag: str = "synthetic",
    until: dt.date | None = None,
    unknown_department: bool = False,
) -> SyntheticYear:
    """About `sessions` sessions in `year` up to `until` (default: its last day), spread over patients."""
    draw = random.Random(f"{seed}-{year}-{tag}")
    first_day = max(dt.date(year, 1, 1), policy.default_rules()[0].valid_from)
    last_day = min(until or dt.date(year, 12, 31), dt.date(year, 12, 31))
    days = (last_day - first_day).days + 1
    if days <= 0:
        raise ValueError(f"no day of {year} to hold sessions on")
    plan = SyntheticYear(year=year, tag=tag)
    count = max(3, sessions // 60)
    for number in range(count):
        department = None if unknown_department and number == count - 1 else DEPARTMENTS[number % len(DEPARTMENTS)]
        plan.psychologists[f"{tag}-psy-{number:05d}"] = department
    subs = list(plan.psychologists)
    quota = max(rule.sessions_per_year for rule in policy.default_rules())

    patient = 0
    while len(plan.sessions) < sessions:
        birth = dt.date(1950 + patient % 65, 1 + patient % 12, 1 + patient % 28)
        nir = synthetic_nir(patient, birth)
        main, other = draw.choice(subs), draw.choice(subs)
        wanted = min(_sessions_wanted(draw, quota), sessions - len(plan.sessions))
        dates = sorted(first_day + dt.timedelta(days=draw.randrange(days)) for _ in range(wanted))
        kept: list[dt.date] = []
        for day in dates:
            # The declaration's check: the count so far must be under the quota of the session's date.
            if len(kept) < policy.rule_for(day).sessions_per_year:
                kept.append(day)
        for index, day in enumerate(kept):
            situation = draw.choice(SITUATIONS) if draw.random() < 0.15 else None
            plan.sessions.append(
                PlannedSession(
                    patient=patient,
                    nir=nir,
                    birth_date=birth,
                    psychologist=other if draw.random() < 0.1 else main,
                    date=day,
                    ordinal=index + 1,
                    situation=situation,
                    session_id=str(uuid.uuid5(_NAMESPACE, f"{tag}-{year}-{seed}-{patient}-{index}")),
                )
            )
        patient += 1
    return plan


def session_requests(plan: SyntheticYear, keyring: PatientKeyring) -> list[SessionRequest]:
    """Each planned session as a checked declaration, before its count decides its kind and price."""
    keys: dict[int, str] = {}
    requests = []
    for session in plan.sessions:
        if session.patient not in keys:
            keys[session.patient] = keyring.patient_key(session.nir, plan.year)
        rule = policy.rule_for(session.date)
        requests.append(
            SessionRequest(
                session_id=session.session_id,
                patient_key=keys[session.patient],
                psychologist_sub=session.psychologist,
                date=session.date,
                situation=policy.checked_situation(rule, session.situation),
                referral=None,
                rule=rule,
                created_at=f"{session.date.isoformat()}T12:00:00.000000Z",
            )
        )
    return requests


def session_records(plan: SyntheticYear, keyring: PatientKeyring) -> list[tuple[SessionRecord, str | None]]:
    """Each planned session as a declaration would store it (kind and price from its ordinal), with its
    department."""
    return [
        (request.priced(session.ordinal), plan.department_of(session))
        for request, session in zip(session_requests(plan, keyring), plan.sessions, strict=True)
    ]


def load_year(
    store,
    plan: SyntheticYear,
    keyring: PatientKeyring,
    *,
    declare_patients: Sequence[int] = (),
    workers: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Store a synthetic year (`store`: a SessionYearStore): most sessions by bulk import (BatchWriteItem,
    counters set alongside), and the
    sessions of `declare_patients` one declaration at a time, through the quota transaction the API uses
    (their psychologists get an accepted convention first)."""
    from msp.sessions.declarations import record_session
    from msp.sessions.journal import JournalEntry
    from msp.storage.conventions import record_convention
    from msp.storage.sessions import session_store

    declared = set(declare_patients)
    records = session_records(plan, keyring)
    imported = [pair for pair, session in zip(records, plan.sessions, strict=True) if session.patient not in declared]
    store.import_sessions(imported, workers=workers, progress=progress)
    if not declared:
        return
    by_patient: dict[int, list[SessionRequest]] = {}
    for request, session in zip(session_requests(plan, keyring), plan.sessions, strict=True):
        if session.patient in declared:
            by_patient.setdefault(session.patient, []).append(request)
    for sub in {request.psychologist_sub for patient in by_patient.values() for request in patient}:
        record_convention(
            psychologist_sub=sub,
            status="accepted",
            candidature_id=str(uuid.uuid5(_NAMESPACE, sub)),
            psychologist_id=f"psy-{sub}",
            department=plan.psychologists[sub],
            updated_at=f"{plan.year}-01-01T00:00:00.000000Z",
            start_date=f"{plan.year}-01-01",
        )

    def declare(patient_requests: list[SessionRequest]) -> None:
        for request in patient_requests:
            record_session(session_store(), request, JournalEntry.declaring(request))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(declare, by_patient.values()))
