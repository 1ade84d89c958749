"""The report's JSON and its CSV files for a French spreadsheet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

from msp.storage.reports import report_prefix
from msp.tally.reports import build_report, csv_files, latest_pointer, report_files, summary, to_csv
from msp.tally.rules import REPAIRED, TOO_RECENT, CounterRow, RunPlan, SessionRow, ShardTally

PLAN = RunPlan(
    run_id="final-2025-01-01",
    year=2024,
    as_of=dt.date(2024, 12, 31),
    quota=12,
    final=True,
    repair=False,
    started_at="2025-01-01T05:00:00.000000Z",
    settle_seconds=300,
)


def row(patient, department="75", price=3050, date="2024-03-01", reason=None, psychologist="psy-1"):
    amo = price * 60 // 100
    kind = "assessment" if date == "2024-03-01" else "follow_up"
    advance = 0 if reason else price
    return SessionRow(
        patient, psychologist, department, date, kind, reason, price, amo, price - amo, 0, advance, "2022-04-05"
    )


def report(plan=PLAN, repairs=None):
    shard = ShardTally(12)
    shard.add(
        [
            CounterRow("k1:01", 2, "2024-03-02T00:00:00Z"),
            row("k1:01"),
            row("k1:01", department="", reason="css", date="2024-07-01"),
            CounterRow("k1:02", 4, "2024-03-02T00:00:00Z"),
            *(row("k1:02", department="2A", price=5000, date=f"2024-0{m}-01") for m in range(1, 6)),
            row("k1:03", department="2A", psychologist="=cmd|' /C calc'!A0"),
        ]
    )
    return build_report(shard.finish(), plan, generated_at="2025-01-01T05:10:00.000000Z", repairs=repairs)


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "UTF-8 with a byte order mark"
    text = content[3:].decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def test_the_departments_carry_the_contract_fields_with_euros_as_strings():
    departments = report().model_dump(mode="json")["departments"]
    contract = {
        "department",
        "sessions",
        "patients",
        "psychologists",
        "amount_total",
        "amount_amo",
        "amount_amc",
        "patients_at_quota",
    }
    assert all(contract <= set(row) for row in departments)
    assert [row["department"] for row in departments] == ["2A", "75", None]  # unknown last
    corsica = departments[0]
    assert {key: corsica[key] for key in contract} == {
        "department": "2A",
        "sessions": 6,
        "patients": 2,
        "psychologists": 2,
        "amount_total": "280.50",
        "amount_amo": "168.30",
        "amount_amc": "112.20",
        "patients_at_quota": 0,
    }


def test_totals_and_drifts():
    figures = report()
    assert figures.totals.sessions == 8 and figures.totals.patients == 3
    assert figures.totals.psychologists == 2 and figures.totals.departments == 3
    assert figures.totals.amount_total == Decimal("341.50")
    assert figures.totals.amount_tiers_payant == Decimal("30.50")
    assert [(d.patient_key, d.counter, d.sessions, d.repair) for d in figures.drifts] == [
        ("k1:02", 4, 5, None),
        ("k1:03", None, 1, None),
    ]


def test_repair_outcomes_appear_only_when_a_repair_was_asked():
    repairs = {"k1:02": REPAIRED, "k1:03": TOO_RECENT}
    assert [d.repair for d in report(repairs=repairs).drifts] == [None, None]
    asked = report(plan=RunPlan(**{**PLAN.__dict__, "repair": True}), repairs=repairs)
    assert [d.repair for d in asked.drifts] == [REPAIRED, TOO_RECENT]


def test_csv_files_open_in_a_french_spreadsheet():
    files = csv_files(report())
    assert set(files) == {
        "departments.csv",
        "psychologists.csv",
        "months.csv",
        "rules.csv",
        "patients_near_quota.csv",
        "distribution.csv",
        "drifts.csv",
    }
    departments = read_csv(files["departments.csv"])
    assert departments[0][:5] == ["Département", "Psychologues", "Séances", "Patients", "Montant total (€)"]
    assert departments[1][:5] == ["2A", "2", "6", "2", "280,50"]
    assert departments[3][0] == "inconnu"
    psychologists = read_csv(files["psychologists.csv"])
    assert [line[0] for line in psychologists[1:]] == ["'=cmd|' /C calc'!A0", "psy-1"], "no formula runs"
    assert psychologists[2][1] == "2A, 75, inconnu"
    assert read_csv(files["distribution.csv"])[1:] == [["1", "1"], ["2", "1"], ["5", "1"]]
    drifts = read_csv(files["drifts.csv"])
    assert drifts[1][:3] == ["k1:02", "4", "5"] and drifts[2][1] == ""


def test_csv_cells_spell_euros_with_a_comma_and_quote_separators():
    content = to_csv(["a", "b", "c"], [[Decimal("1234.5"), "x;y", None]])
    assert read_csv(content) == [["a", "b", "c"], ["1234,50", "x;y", ""]]


def test_report_files_summary_and_pointer():
    figures = report()
    files = report_files(figures)
    assert files["report.json"][1] == "application/json"
    assert files["departments.csv"][1].startswith("text/csv")
    assert json.loads(files["report.json"][0]) == figures.model_dump(mode="json")
    assert json.loads(files["summary.json"][0]) == summary(figures)
    assert set(summary(figures)) == {
        "year",
        "run_id",
        "as_of",
        "final",
        "quota",
        "generated_at",
        "departments",
        "months",
        "department_months",
    }
    assert summary(figures)["months"][:2] == [{"month": "2024-01", "sessions": 1}, {"month": "2024-02", "sessions": 1}]
    # Sessions by department and month, the unknown department last, as null.
    assert summary(figures)["department_months"] == [
        {"department": "2A", "month": month, "sessions": 2 if month == "2024-03" else 1}
        for month in ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    ] + [
        {"department": "75", "month": "2024-03", "sessions": 1},
        {"department": None, "month": "2024-07", "sessions": 1},
    ]
    pointer = latest_pointer(figures, report_prefix(figures.year, figures.run_id))
    assert pointer["prefix"] == "reports/2024/final-2025-01-01/"
    assert pointer["summary"] == "reports/2024/final-2025-01-01/summary.json"
    assert pointer["report"] == "reports/2024/final-2025-01-01/report.json"


def test_each_month_department_and_psychologist_has_sessions_by_kind_and_situation_and_amounts_per_payer():
    figures = report().model_dump(mode="json")
    (july,) = [month for month in figures["months"] if month["month"] == "2024-07"]
    assert (july["sessions_assessment"], july["sessions_follow_up"]) == (0, 1)
    assert july["sessions_by_situation"] == {
        "none": 0,
        "css": 1,
        "ame": 0,
        "ald": 0,
        "maternite": 0,
        "at_mp": 0,
        "accident_tiers": 0,
    }
    assert (july["amount_amo"], july["amount_amc"], july["amount_state"], july["amount_patient_advance"]) == (
        "18.30",
        "12.20",
        "0.00",
        "0.00",
    )
    (corsica,) = [row for row in figures["departments"] if row["department"] == "2A"]
    assert (corsica["sessions_assessment"], corsica["sessions_follow_up"]) == (2, 4)
    assert corsica["sessions_by_situation"]["none"] == 6
    psychologist = next(row for row in figures["psychologists"] if row["psychologist_sub"] == "psy-1")
    assert psychologist["sessions_assessment"] + psychologist["sessions_follow_up"] == psychologist["sessions"]
    assert sum(psychologist["sessions_by_situation"].values()) == psychologist["sessions"]


def test_the_csv_files_spell_the_kinds_situations_and_the_states_share():
    files = csv_files(report())
    for name in ("departments.csv", "psychologists.csv", "months.csv"):
        header = read_csv(files[name])[0]
        for column in (
            "Part de l'État, AME (€)",
            "Séances d'évaluation",
            "Séances de suivi",
            "Séances : Complémentaire santé solidaire",
            "Séances : Aide médicale de l'État",
            "Séances : Accident causé par un tiers",
        ):
            assert column in header, (name, column)
    months = read_csv(files["months.csv"])
    july = dict(zip(months[0], next(line for line in months if line[0] == "2024-07"), strict=True))
    assert july["Séances : Complémentaire santé solidaire"] == "1" and july["Séances de suivi"] == "1"
