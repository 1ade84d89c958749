"""checkov on the templates, against a committed baseline: `make lint` fails on any failing check the baseline
does not explain, and on any baseline line that no longer matches a failing check (so it cannot go stale).

The baseline (infra/checkov-baseline.txt) has one line per check left failing, with why it does not apply:

    CKV_AWS_117 | AWS::Serverless::Function.* | why it does not apply

checkov runs offline (--skip-download): nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = (ROOT / "template.yaml", ROOT / "edge.yaml")
BASELINE = ROOT / "infra" / "checkov-baseline.txt"


@dataclass(frozen=True)
class Exemption:
    check_id: str
    resources: str  # a glob over checkov's "<type>.<logical id>"
    reason: str

    def covers(self, check_id: str, resource: str) -> bool:
        return check_id == self.check_id and fnmatch.fnmatchcase(resource, self.resources)


def read_baseline(path: Path = BASELINE) -> list[Exemption]:
    exemptions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{path.name}:{number}: write 'CHECK_ID | resource glob | why it does not apply'")
        exemptions.append(Exemption(*parts))
    return exemptions


def failed_checks(report: list[dict] | dict) -> list[tuple[str, str, str]]:
    """(check id, resource, file) of every failed check in checkov's JSON report."""
    reports = report if isinstance(report, list) else [report]
    return sorted(
        (check["check_id"], check["resource"], check["file_path"].lstrip("/"))
        for part in reports
        for check in part.get("results", {}).get("failed_checks", [])
    )


def compare(failed: list[tuple[str, str, str]], exemptions: list[Exemption]) -> tuple[list, list[Exemption]]:
    """The failures no exemption covers, and the exemptions covering no failure."""
    unexplained = [f for f in failed if not any(e.covers(f[0], f[1]) for e in exemptions)]
    unused = [e for e in exemptions if not any(e.covers(f[0], f[1]) for f in failed)]
    return unexplained, unused


def run_checkov(checkov: str, templates: tuple[Path, ...] = TEMPLATES) -> list[dict] | dict:
    command = [checkov, "--framework", "cloudformation", "--skip-download", "--quiet", "--compact", "-o", "json"]
    for template in templates:
        command += ["-f", str(template)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov did not run (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", required=True, help="the checkov executable")
    arguments = parser.parse_args(argv)
    report = run_checkov(arguments.checkov)
    failed = failed_checks(report)
    unexplained, unused = compare(failed, read_baseline())
    parts = report if isinstance(report, list) else [report]
    passed = sum(part.get("summary", {}).get("passed", 0) for part in parts)
    print(f"checkov: {passed} checks passed, {len(failed)} failed, {len(failed) - len(unexplained)} explained")
    for check_id, resource, file in unexplained:
        print(f"  not in {BASELINE.relative_to(ROOT)}: {check_id} {resource} ({file})")
    for exemption in unused:
        print(f"  baseline line matches no failing check (remove it): {exemption.check_id} | {exemption.resources}")
    return 1 if unexplained or unused else 0


if __name__ == "__main__":
    sys.exit(main())
