"""`make import-conventions FILE=conventions.csv [API=http://127.0.0.1:3000] [TOKEN=...]`: conventions granted
before this service, loaded line by line through POST /v1/admin/conventions (the route an admin would call).

The CSV format is in the README ("Existing conventions"). Each line is sent with an Idempotency-Key derived from
the psychologist's identifier, so the file can be loaded again: a line already imported is replayed or, once its
key has expired, refused because its identifier is held, and counted as already there. Progress is printed as it
goes, then a summary with every refused line and why.

Without TOKEN, the importer signs an admin token with the local stack's dev key: that works against `make run`
only. Against a deployed stack, pass an admin's access token.
"""

from __future__ import annotations

import argparse
import csv
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.api_client import ApiClient

# Idempotency-Keys of the lines, derived from the identifier (uuid5), fixed once for all.
IMPORT_KEYS = uuid.UUID("b9a4f1d2-6c3e-4e8b-8f0a-2d5c7e91a346")
IMPORTER_SUB = "convention-importer"
COLUMNS = (
    "owner_sub",
    "convention_start",
    "civility",
    "first_name",
    "last_name",
    "email",
    "phone",
    "identifier_type",
    "identifier_value",
    "diploma_university",
    "diploma_year",
    "experience_years",
    "address",
    "postcode",
    "city",
    "department",
    "lat",
    "lon",
    "languages",
    "publics",
    "teleconsultation",
    "website",
    "public_email",
    "public_phone",
)
OPTIONAL = ("website", "public_email", "public_phone")
_TRUE, _FALSE = {"oui", "true", "1", "yes"}, {"non", "false", "0", "no"}


class LineError(ValueError):
    pass


def _number(value: str, column: str, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(value.replace(",", ".") if kind is float else value)
    except ValueError:
        raise LineError(f"{column}: not a number ({value!r})") from None


def body_of(row: dict[str, str]) -> dict[str, Any]:
    """The request body of one CSV line; LineError when the line cannot be read at all (the API checks the rest)."""
    values = {name: (row.get(name) or "").strip() for name in COLUMNS}
    teleconsultation = values["teleconsultation"].lower()
    if teleconsultation not in _TRUE | _FALSE:
        raise LineError(f"teleconsultation: oui or non, not {values['teleconsultation']!r}")
    body: dict[str, Any] = {
        "owner_sub": values["owner_sub"],
        "convention_start": values["convention_start"],
        "civility": values["civility"],
        "first_name": values["first_name"],
        "last_name": values["last_name"],
        "email": values["email"],
        "phone": values["phone"],
        "identifier": {"type": values["identifier_type"].lower(), "value": values["identifier_value"]},
        "diploma": {
            "university": values["diploma_university"],
            "year": _number(values["diploma_year"], "diploma_year", int),
        },
        "experience_years": _number(values["experience_years"], "experience_years", int),
        "practices": [
            {
                "address": values["address"],
                "postcode": values["postcode"],
                "city": values["city"],
                "department": values["department"],
                "lat": _number(values["lat"], "lat", float),
                "lon": _number(values["lon"], "lon", float),
            }
        ],
        "languages": [code.strip() for code in values["languages"].split(",") if code.strip()],
        "publics": [code.strip() for code in values["publics"].split(",") if code.strip()],
        "teleconsultation": teleconsultation in _TRUE,
    }
    body |= {name: values[name] for name in OPTIONAL if values[name]}
    return body


def idempotency_key(body: dict[str, Any]) -> str:
    identifier = body["identifier"]
    return str(uuid.uuid5(IMPORT_KEYS, f"{identifier['type']}:{identifier['value'].upper()}"))


@dataclass
class Summary:
    lines: int = 0
    imported: int = 0
    already_there: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)

    def report(self) -> str:
        text = [
            f"{self.lines} lines: {self.imported} imported, {self.already_there} already there, "
            f"{len(self.refused)} refused."
        ]
        text += [f"  line {line}: {reason}" for line, reason in self.refused]
        return "\n".join(text)


def _reason(response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError):
        return f"HTTP {response.status_code}"
    details = "; ".join(
        f"{detail.get('field')}: {detail.get('message')}" for detail in error.get("details", []) if "field" in detail
    )
    return f"{error['code']}: {error['message']}" + (f" ({details})" if details else "")


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a UTF-8 CSV (a byte order mark allowed), ';' or ',' between fields."""
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=";,")
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    missing = [name for name in COLUMNS if name not in OPTIONAL and name not in (reader.fieldnames or [])]
    if missing:
        raise LineError(f"the header lacks: {', '.join(missing)}")
    yield from enumerate(reader, start=2)


def import_file(
    path: Path, client: ApiClient, token: str, progress: Callable[[int, Summary], None] | None = None
) -> Summary:
    summary = Summary()
    for number, row in read_lines(path):
        summary.lines += 1
        try:
            body = body_of(row)
        except LineError as error:
            summary.refused.append((number, str(error)))
            continue
        response = client.call(
            "POST", "/v1/admin/conventions", token=token, json=body, headers={"Idempotency-Key": idempotency_key(body)}
        )
        if response.status_code == 201:
            summary.imported += 1
        elif response.status_code == 409 and response.json()["error"]["code"] == "identifier_in_use":
            summary.already_there += 1
        elif response.status_code == 422 and response.json()["error"]["code"] == "idempotency_key_reused":
            reason = "this identifier was imported from another line with other values: keep one line per identifier"
            summary.refused.append((number, reason))
        else:
            summary.refused.append((number, _reason(response)))
        if progress is not None:
            progress(number, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make import-conventions", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--api", default="http://127.0.0.1:3000", help="the API's base URL (default: make run's)")
    parser.add_argument("--token", default=None, help="an admin's access token (default: a local dev token)")
    args = parser.parse_args(argv)
    from infra.dev_issuer import DEFAULT_KEY_DIR, DevIssuer

    client = ApiClient(args.api.rstrip("/"), DevIssuer(DEFAULT_KEY_DIR))
    token = args.token or client.token("admin", sub=IMPORTER_SUB)

    def progress(line: int, summary: Summary) -> None:
        if summary.lines % 50 == 0:
            print(
                f"line {line}: {summary.imported} imported, {summary.already_there} already there, "
                f"{len(summary.refused)} refused",
                flush=True,
            )

    try:
        summary = import_file(args.file, client, token, progress)
    except (OSError, LineError) as error:
        print(f"Cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    print(summary.report())
    return 1 if summary.refused else 0


if __name__ == "__main__":
    sys.exit(main())
