"""The tally's report: its figures as JSON, and as CSV files a French spreadsheet opens as they are.

CSV: UTF-8 with a byte order mark (so Excel reads the accents), ';' between fields, a decimal comma in euros,
CRLF line ends, headers in French. One file per aggregate. Nothing here identifies a patient beyond their
pseudonymous key; the NIR is never stored, so it cannot be reported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from msp.sessions.policy import ASSESSMENT, FOLLOW_UP, Euros, default_rules
from msp.tally.rules import (
    ADVANCE,
    AMC,
    AMO,
    CHANGED_SINCE_READ,
    NO_SITUATION,
    REPAIRED,
    SESSIONS,
    STATE,
    TIERS_PAYANT_SESSIONS,
    TIERS_PAYANT_TOTAL,
    TOO_RECENT,
    TOTAL,
    UNKNOWN_DEPARTMENT,
    Group,
    RunPlan,
    Tally,
)


def euros(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(Decimal("0.01"))


class _Figures(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sessions: int
    patients: int
    amount_total: Euros
    amount_amo: Euros
    amount_amc: Euros
    amount_state: Euros
    amount_patient_advance: Euros
    tiers_payant_sessions: int
    amount_tiers_payant: Euros
    patients_at_quota: int
    patients_one_left: int
    sessions_assessment: int
    sessions_follow_up: int
    # Every situation of the policy ("none": declared without one), zeros included.
    sessions_by_situation: dict[str, int]


def situation_labels() -> dict[str, str]:
    """The situations a report lists, in the policy's order, with their labels (latest rule's wins)."""
    labels: dict[str, str] = {}
    for rule in default_rules():
        for situation in rule.situations:
            labels[situation.code or NO_SITUATION] = situation.label
    return labels


def _figures(group: Group) -> dict[str, Any]:
    sums = group.sums
    by_situation = dict.fromkeys(situation_labels(), 0) | dict(sorted(group.situations.items()))
    return {
        "sessions": sums[SESSIONS],
        "patients": group.patients,
        "amount_total": euros(sums[TOTAL]),
        "amount_amo": euros(sums[AMO]),
        "amount_amc": euros(sums[AMC]),
        "amount_state": euros(sums[STATE]),
        "amount_patient_advance": euros(sums[ADVANCE]),
        "sessions_assessment": group.kinds[ASSESSMENT],
        "sessions_follow_up": group.kinds[FOLLOW_UP],
        "sessions_by_situation": by_situation,
        "tiers_payant_sessions": sums[TIERS_PAYANT_SESSIONS],
        "amount_tiers_payant": euros(sums[TIERS_PAYANT_TOTAL]),
        "patients_at_quota": group.at_quota,
        "patients_one_left": group.one_left,
    }


class DepartmentFigures(_Figures):
    """A session counts in the department of its psychologist's first practice (stored with the session)."""

    department: str | None
    psychologists: int


class PsychologistFigures(_Figures):
    psychologist_sub: str
    departments: list[str | None]


class MonthFigures(_Figures):
    month: str


class DepartmentMonth(BaseModel):
    """Sessions of one department in one month (the open statistics' table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    department: str | None
    month: str
    sessions: int


class RuleFigures(_Figures):
    """Sessions held under one row of the policy table (the rule in force on their date)."""

    valid_from: str


class Totals(_Figures):
    psychologists: int
    departments: int
    counters: int
    drifts: int


class PatientNearQuota(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_key: str
    sessions: int
    quota: int
    remaining: int
    status: str  # at_quota | one_left
    departments: list[str | None]
    last_session: str


class DistributionRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sessions: int
    patients: int


class Drift(BaseModel):
    """A counter that disagrees with the sessions found for its patient (None: no counter at all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_key: str
    counter: int | None
    sessions: int
    counter_updated_at: str | None
    repair: str | None = None  # None when no repair was asked; else repaired | changed_since_read | too_recent


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    year: int
    run_id: str
    as_of: str
    final: bool
    quota: int
    repair_requested: bool
    generated_at: str
    totals: Totals
    departments: list[DepartmentFigures]
    psychologists: list[PsychologistFigures]
    months: list[MonthFigures]
    rules: list[RuleFigures]
    patients_near_quota: list[PatientNearQuota]
    distribution: list[DistributionRow]
    drifts: list[Drift]
    department_months: list[DepartmentMonth]


def _department(code: str) -> str | None:
    return None if code == UNKNOWN_DEPARTMENT else code


def _department_order(code: str) -> tuple[bool, str]:
    return (code == UNKNOWN_DEPARTMENT, code)


def _department_months(tally: Tally) -> list[DepartmentMonth]:
    return [
        DepartmentMonth(department=_department(code), month=month, sessions=sessions)
        for code, months in sorted(tally.department_months.items(), key=lambda item: _department_order(item[0]))
        for month, sessions in sorted(months.items())
    ]


def _departments_of(codes: Iterable[str]) -> list[str | None]:
    return [_department(code) for code in sorted(codes, key=_department_order)]


def _psychologist_figures(tally: Tally) -> list[PsychologistFigures]:
    return [
        PsychologistFigures(psychologist_sub=sub, departments=_departments_of(group.members), **_figures(group))
        for sub, group in sorted(tally.psychologists.items())
    ]


def _near_quota(tally: Tally) -> list[PatientNearQuota]:
    return [
        PatientNearQuota(**entry | {"departments": _departments_of(entry["departments"])}) for entry in tally.near_quota
    ]


def _drifts(tally: Tally, plan: RunPlan, repairs: dict[str, str] | None) -> list[Drift]:
    """Each drift with its repair's outcome, when a repair was asked."""
    outcomes = (repairs or {}) if plan.repair else {}
    return [Drift(**drift, repair=outcomes.get(drift["patient_key"])) for drift in tally.drifts]


def build_report(tally: Tally, plan: RunPlan, generated_at: str, repairs: dict[str, str] | None = None) -> Report:
    """The report of a merged tally; `repairs` gives each drift's repair outcome when a repair was asked."""
    psychologists = set().union(*(group.members for group in tally.departments.values()))
    departments = [
        DepartmentFigures(department=_department(code), psychologists=len(group.members), **_figures(group))
        for code, group in sorted(tally.departments.items(), key=lambda item: _department_order(item[0]))
    ]
    return Report(
        year=plan.year,
        run_id=plan.run_id,
        as_of=plan.as_of.isoformat(),
        final=plan.final,
        quota=plan.quota,
        repair_requested=plan.repair,
        generated_at=generated_at,
        totals=Totals(
            psychologists=len(psychologists),
            departments=len(tally.departments),
            counters=tally.counters,
            drifts=len(tally.drifts),
            **_figures(tally.total),
        ),
        departments=departments,
        psychologists=_psychologist_figures(tally),
        months=[MonthFigures(month=month, **_figures(group)) for month, group in sorted(tally.months.items())],
        rules=[RuleFigures(valid_from=day, **_figures(group)) for day, group in sorted(tally.rules.items())],
        patients_near_quota=_near_quota(tally),
        distribution=[
            DistributionRow(sessions=sessions, patients=patients)
            for sessions, patients in sorted(tally.distribution.items())
        ],
        drifts=_drifts(tally, plan, repairs),
        department_months=_department_months(tally),
    )


def summary(report: Report) -> dict[str, Any]:
    """What GET /v1/stats and GET /v1/public/stats serve, read without the rest of the report: its header, its
    departments, and its sessions per month and per department and month."""
    return report.model_dump(mode="json", include={"year", "run_id", "as_of", "final", "quota", "generated_at"}) | {
        "departments": [row.model_dump(mode="json") for row in report.departments],
        "months": [{"month": row.month, "sessions": row.sessions} for row in report.months],
        "department_months": [row.model_dump(mode="json") for row in report.department_months],
    }


# ---------------------------------------------------------------- CSV for a French spreadsheet

_AMOUNT_HEADERS = [
    ("sessions", "Séances"),
    ("patients", "Patients"),
    ("amount_total", "Montant total (€)"),
    ("amount_amo", "Part Assurance Maladie (€)"),
    ("amount_amc", "Part complémentaire (€)"),
    ("amount_state", "Part de l'État, AME (€)"),
    ("amount_patient_advance", "Avancé par les patients (€)"),
    ("tiers_payant_sessions", "Séances en tiers payant"),
    ("amount_tiers_payant", "Montant en tiers payant (€)"),
    ("patients_at_quota", "Patients au plafond"),
    ("patients_one_left", "Patients à une séance du plafond"),
    ("sessions_assessment", "Séances d'évaluation"),
    ("sessions_follow_up", "Séances de suivi"),
]
_STATUS_LABELS = {"at_quota": "au plafond", "one_left": "une séance restante"}
_REPAIR = {
    None: "",
    REPAIRED: "réparé",
    CHANGED_SINCE_READ: "modifié depuis la lecture, non réparé",
    TOO_RECENT: "modifié récemment, non réparé",
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, list):
        return ", ".join(_cell(item) or "inconnu" for item in value)
    text = str(value)
    # A cell starting like a formula would be run by the spreadsheet: keep it text.
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def to_csv(headers: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def _table(models: Sequence[_Figures], first: list[tuple[str, str]]) -> tuple[list[str], list[list[Any]]]:
    columns = first + _AMOUNT_HEADERS
    situations = situation_labels()
    rows = [
        [getattr(model, name) for name, _ in columns]
        + [model.sessions_by_situation.get(code, 0) for code in situations]
        for model in models
    ]
    return [label for _, label in columns] + [f"Séances : {label}" for label in situations.values()], rows


def csv_files(report: Report) -> dict[str, bytes]:
    """One CSV file per aggregate, by file name."""
    departments = _table(report.departments, [("department", "Département"), ("psychologists", "Psychologues")])
    departments[1][:] = [[row[0] if row[0] is not None else "inconnu", *row[1:]] for row in departments[1]]
    files = {
        "departments.csv": to_csv(*departments),
        "psychologists.csv": to_csv(
            *_table(
                report.psychologists,
                [("psychologist_sub", "Psychologue (identifiant)"), ("departments", "Départements")],
            )
        ),
        "months.csv": to_csv(*_table(report.months, [("month", "Mois")])),
        "rules.csv": to_csv(*_table(report.rules, [("valid_from", "Règle en vigueur depuis le")])),
        "patients_near_quota.csv": to_csv(
            [
                "Patient (clé pseudonyme)",
                "Séances",
                "Plafond",
                "Séances restantes",
                "Situation",
                "Départements",
                "Dernière séance",
            ],
            [
                [
                    entry.patient_key,
                    entry.sessions,
                    entry.quota,
                    entry.remaining,
                    _STATUS_LABELS[entry.status],
                    entry.departments,
                    entry.last_session,
                ]
                for entry in report.patients_near_quota
            ],
        ),
        "distribution.csv": to_csv(
            ["Séances dans l'année", "Patients"], [[row.sessions, row.patients] for row in report.distribution]
        ),
        "drifts.csv": to_csv(
            ["Patient (clé pseudonyme)", "Compteur", "Séances trouvées", "Compteur modifié le", "Réparation"],
            [
                [drift.patient_key, drift.counter, drift.sessions, drift.counter_updated_at, _REPAIR[drift.repair]]
                for drift in report.drifts
            ],
        ),
    }
    return files


def report_files(report: Report) -> dict[str, tuple[bytes, str]]:
    """Every file of a report, by name under the run's prefix, with its content type."""
    files: dict[str, tuple[bytes, str]] = {
        "report.json": (_json(report.model_dump(mode="json")), "application/json"),
        "summary.json": (_json(summary(report)), "application/json"),
    }
    for name, content in csv_files(report).items():
        files[name] = (content, "text/csv; charset=utf-8")
    return files


def latest_pointer(report: Report, prefix: str) -> dict[str, Any]:
    """The year's latest.json once the report's files are written under `prefix`."""
    return {
        "year": report.year,
        "run_id": report.run_id,
        "as_of": report.as_of,
        "final": report.final,
        "generated_at": report.generated_at,
        "prefix": prefix,
        "report": f"{prefix}report.json",
        "summary": f"{prefix}summary.json",
    }


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
