"""make import-conventions: a CSV of conventions through POST /v1/admin/conventions, idempotent by identifier."""

from __future__ import annotations

import csv
import uuid

from infra.import_conventions import COLUMNS, IMPORTER_SUB, import_file


def line(unique_fields, **changes) -> dict[str, str]:
    fields = unique_fields()
    practice = fields["practices"][0]
    row = {
        "owner_sub": f"psy-{uuid.uuid4().hex[:10]}",
        "convention_start": "2022-09-01",
        "civility": fields["civility"],
        "first_name": fields["first_name"],
        "last_name": fields["last_name"],
        "email": fields["email"],
        "phone": fields["phone"],
        "identifier_type": fields["identifier"]["type"].upper(),
        "identifier_value": fields["identifier"]["value"],
        "diploma_university": fields["diploma"]["university"],
        "diploma_year": str(fields["diploma"]["year"]),
        "experience_years": str(fields["experience_years"]),
        "address": practice["address"],
        "postcode": practice["postcode"],
        "city": practice["city"],
        "department": practice["department"],
        "lat": str(practice["lat"]).replace(".", ","),
        "lon": str(practice["lon"]).replace(".", ","),
        "languages": ",".join(fields["languages"]),
        "publics": ",".join(fields["publics"]),
        "teleconsultation": "oui",
        "website": "",
        "public_email": "",
        "public_phone": "",
    }
    return row | changes


def write(path, rows) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter=";")
        writer.writeheader()
        writer.writerows(rows)


def test_a_csv_loads_once_and_reports_every_refused_line(api, tmp_path, unique_fields, new_patient):
    good = [line(unique_fields) for _ in range(3)]
    rows = [
        good[0],
        line(unique_fields, convention_start="2021-12-01"),  # before the programme
        good[1],
        line(unique_fields, identifier_value="12345678901"),  # a wrong Luhn key
        line(unique_fields, teleconsultation="peut-être"),
        line(unique_fields, identifier_value=good[0]["identifier_value"]),  # the same identifier again
        good[2],
    ]
    path = tmp_path / "conventions.csv"
    write(path, rows)
    token = api.token("admin", sub=IMPORTER_SUB)
    seen = []

    first = import_file(path, api, token, progress=lambda number, summary: seen.append(number))

    assert seen == [2, 3, 4, 5, 7, 8]  # every line sent, numbered as in the file (the header is line 1)
    assert (first.lines, first.imported, first.already_there) == (7, 3, 0)
    refused = dict(first.refused)
    assert sorted(refused) == [3, 5, 6, 7]
    assert "convention_start" in refused[3] and "identifier" in refused[5] and "teleconsultation" in refused[6]
    assert "one line per identifier" in refused[7]
    report = first.report()
    assert report.startswith("7 lines: 3 imported, 0 already there, 4 refused.") and "line 5:" in report

    # Loaded again: nothing new, the same lines refused for the same reasons.
    again = import_file(path, api, token)
    assert (again.imported + again.already_there, dict(again.refused).keys()) == (3, refused.keys())
    for row in good:
        owner = api.token("psychologist", sub=row["owner_sub"])
        assert api.call("POST", "/v1/sessions/quota", token=owner, json=new_patient()).status_code == 200
