"""Audit the locked Python dependencies against known vulnerabilities, offline.

`make test` runs the check on a committed snapshot of the PyPA advisory database (OSV format), restricted to
the packages the project locks, so it needs no network: every pinned version that an advisory affects must
be upgraded, or explained in infra/advisories/accepted.json. `make audit` also asks the live services
through pip-audit, where the machine reaches them.

    python -m infra.dependency_audit check
    python -m infra.dependency_audit refresh --database /path/to/advisory-database [--commit SHA --date DAY]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
# checkov's and the SAM CLI's locks are audited too: their virtualenvs (make lint, make validate) pin versions of
# their own (boto3, packaging ...).
LOCK_FILES = (
    ROOT / "functions" / "requirements.txt",
    ROOT / "requirements-dev.lock",
    ROOT / "requirements-checkov.lock",
    ROOT / "infra" / "sam" / "requirements.lock",
)
SNAPSHOT = ROOT / "infra" / "advisories" / "pypi.json"
ACCEPTED = ROOT / "infra" / "advisories" / "accepted.json"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # ECOSYSTEM ranges: (event, version) in the database's order
    versions: frozenset[str]

    def affects(self, version: str) -> bool:
        if version in self.versions:
            return True
        try:
            target = Version(version)
        except InvalidVersion:
            return False
        return any(_in_range(events, target) for events in self.ranges)


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: Advisory


def _in_range(events: tuple[tuple[str, str], ...], target: Version) -> bool:
    """OSV's rule for an ECOSYSTEM range: walk its events in version order; the last one reached decides."""
    affected = False
    for at, kind in sorted(((Version(boundary), kind) for kind, boundary in events), key=lambda event: event[0]):
        if kind == "introduced" and target >= at:
            affected = True
        elif (kind == "fixed" and target >= at) or (kind == "last_affected" and target > at):
            affected = False
    return affected


def locked_versions(lock_files: tuple[Path, ...] = LOCK_FILES) -> dict[str, set[str]]:
    """Every `name==version` pin of the lock files, by canonical package name (locks may pin different versions)."""
    pins: dict[str, set[str]] = {}
    for path in lock_files:
        for line in path.read_text().splitlines():
            match = _PIN.match(line.strip())
            if match:
                pins.setdefault(canonicalize_name(match[1]), set()).add(match[2])
    return pins


def load_snapshot(path: Path = SNAPSHOT) -> tuple[dict, dict[str, list[Advisory]]]:
    """The snapshot's provenance and its advisories by package."""
    data = json.loads(path.read_text())
    advisories = {
        package: [
            Advisory(
                id=entry["id"],
                aliases=tuple(entry.get("aliases", ())),
                summary=entry.get("summary", ""),
                ranges=tuple(tuple((kind, version) for kind, version in events) for events in entry.get("ranges", ())),
                versions=frozenset(entry.get("versions", ())),
            )
            for entry in entries
        ]
        for package, entries in data["packages"].items()
    }
    return data["source"], advisories


def accepted_findings(path: Path = ACCEPTED) -> dict[str, dict[str, str]]:
    """Advisories judged not to apply, by advisory id: {"package": ..., "reason": ...}."""
    return json.loads(path.read_text())["accepted"]


def audit(pins: dict[str, set[str]], advisories: dict[str, list[Advisory]]) -> list[Finding]:
    return [
        Finding(package, version, advisory)
        for package, versions in sorted(pins.items())
        for version in sorted(versions)
        for advisory in advisories.get(package, [])
        if advisory.affects(version)
    ]


def unaudited(pins: dict[str, set[str]], advisories: dict[str, list[Advisory]]) -> list[str]:
    """Locked packages the snapshot was not built for: it must be refreshed after the locks change."""
    return sorted(set(pins) - set(advisories))


# ---------------------------------------------------------------- building the snapshot


def _summary(record: dict) -> str:
    text = (record.get("summary") or record.get("details") or "").strip().splitlines()
    return text[0][:200] if text else ""


def _entry(record: dict, package: str) -> dict | None:
    ranges, versions = [], set()
    for affected in record.get("affected", []):
        if canonicalize_name(affected.get("package", {}).get("name", "")) != package:
            continue
        versions.update(affected.get("versions", []))
        for version_range in affected.get("ranges", []):
            if version_range.get("type") == "ECOSYSTEM":
                ranges.append([list(next(iter(event.items()))) for event in version_range.get("events", [])])
    if not ranges and not versions:
        return None
    return {
        "id": record["id"],
        "aliases": sorted(record.get("aliases") or []),
        "summary": _summary(record),
        "ranges": ranges,
        "versions": sorted(versions),
    }


def build_snapshot(database: Path, packages: list[str], source: dict) -> dict:
    """The advisories of `packages` found under `database` (a copy of the PyPA advisory database: vulns/...)."""
    import yaml  # only the refresh reads YAML

    found: dict[str, list[dict]] = {package: [] for package in packages}
    for path in sorted((database / "vulns").glob("*/*.yaml")):
        record = yaml.safe_load(path.read_text())
        for affected in record.get("affected", []):
            package = canonicalize_name(affected.get("package", {}).get("name", ""))
            if package in found and (entry := _entry(record, package)) and entry not in found[package]:
                found[package].append(entry)
    return {"source": source, "packages": found}


# ---------------------------------------------------------------- command line


def _check() -> int:
    pins = locked_versions()
    source, advisories = load_snapshot()
    accepted = accepted_findings()
    print(f"{len(pins)} locked packages against {source['name']} at {source['commit'][:12]} ({source['date']})")
    missing = unaudited(pins, advisories)
    if missing:
        print(f"not in the snapshot (refresh it): {', '.join(missing)}")
    failures = 0
    for finding in audit(pins, advisories):
        reason = accepted.get(finding.advisory.id, {}).get("reason")
        verdict = f"accepted: {reason}" if reason else "UPGRADE"
        failures += reason is None
        print(f"  {finding.package}=={finding.version}: {finding.advisory.id} {finding.advisory.summary} [{verdict}]")
    print("no known vulnerability left unexplained" if not failures and not missing else f"{failures} to fix")
    return 1 if failures or missing else 0


def _refresh(database: Path, commit: str, date: str) -> int:
    source = {"name": "PyPA advisory database", "commit": commit, "date": date}
    snapshot = build_snapshot(database, sorted(locked_versions()), source)
    SNAPSHOT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    count = sum(len(entries) for entries in snapshot["packages"].values())
    print(f"{SNAPSHOT.relative_to(ROOT)}: {count} advisories for {len(snapshot['packages'])} packages")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="audit the lock files against the committed snapshot")
    refresh = commands.add_parser("refresh", help="rebuild the snapshot from a copy of the advisory database")
    refresh.add_argument("--database", type=Path, required=True, help="folder holding the database's vulns/")
    refresh.add_argument("--commit", required=True, help="the database commit the copy comes from")
    refresh.add_argument("--date", required=True, help="that commit's date (YYYY-MM-DD)")
    arguments = parser.parse_args(argv)
    if arguments.command == "check":
        return _check()
    return _refresh(arguments.database, arguments.commit, arguments.date)


if __name__ == "__main__":
    sys.exit(main())
