"""The offline dependency audit: the locked versions against the committed advisory snapshot."""

from __future__ import annotations

import pytest

from infra.dependency_audit import (
    Advisory,
    accepted_findings,
    audit,
    audit_locks,
    build_snapshot,
    load_snapshot,
    locked_versions,
    unaudited,
)


@pytest.fixture(scope="module")
def snapshot():
    return load_snapshot()[1]


def test_every_locked_package_is_in_the_snapshot(snapshot):
    assert unaudited(locked_versions(), snapshot) == [], "run `python -m infra.dependency_audit refresh` after a lock"


def test_no_locked_version_has_an_unexplained_advisory(snapshot):
    accepted = accepted_findings()
    unexplained = [
        f"{finding.package}=={finding.version}: {finding.advisory.id}"
        for finding in audit_locks(snapshot)
        if finding.advisory.id not in accepted
    ]
    assert unexplained == [], "upgrade these pins, or explain them in infra/advisories/accepted.json"


def test_every_explanation_still_matches_a_finding(snapshot):
    found = {finding.advisory.id for finding in audit_locks(snapshot)}
    assert set(accepted_findings()) <= found, "drop the explanations of advisories that no longer apply"


@pytest.mark.parametrize(
    ("version", "affected"),
    [("1.26.17", True), ("1.26.18", False), ("2.0.0", True), ("2.0.6", True), ("2.0.7", False), ("2.8.0", False)],
)
def test_a_known_urllib3_advisory_is_found_only_in_its_ranges(snapshot, version, affected):
    # CVE-2023-45803: fixed in 1.26.18 and 2.0.7.
    findings = audit({"urllib3": version}, snapshot)
    assert ("PYSEC-2023-212" in {finding.advisory.id for finding in findings}) is affected


def test_a_package_two_locks_pin_differently_is_audited_at_both_versions(snapshot, tmp_path):
    fixed, affected = tmp_path / "fixed.txt", tmp_path / "affected.txt"
    fixed.write_text("urllib3==2.0.7\n")
    affected.write_text("urllib3==2.0.6\n")
    findings = audit_locks(snapshot, (affected, fixed))
    assert "PYSEC-2023-212" in {finding.advisory.id for finding in findings}
    assert {finding.version for finding in findings} == {"2.0.6"}


def test_last_affected_closes_a_range_after_that_version():
    advisory = Advisory("X-1", (), "", ((("introduced", "1.2"), ("last_affected", "1.4")),), frozenset())
    assert [advisory.affects(v) for v in ("1.1", "1.2", "1.4", "1.4.1", "not-a-version")] == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_an_explicitly_listed_version_is_affected_even_outside_any_range():
    advisory = Advisory("X-2", (), "", (), frozenset({"0.9"}))
    assert advisory.affects("0.9") and not advisory.affects("1.0")


def test_lock_files_are_read_pin_by_pin(tmp_path):
    lock = tmp_path / "requirements.txt"
    lock.write_text("# header\nBoto3==1.40.0\n    # via x\nTyping_Extensions==4.16.0 ; python_version < '4'\n-e .\n")
    assert locked_versions((lock,)) == {"boto3": "1.40.0", "typing-extensions": "4.16.0"}


def test_the_snapshot_keeps_only_the_locked_packages_ecosystem_ranges(tmp_path):
    folder = tmp_path / "vulns" / "demo"
    folder.mkdir(parents=True)
    (folder / "PYSEC-1.yaml").write_text(
        "id: PYSEC-1\nsummary: Demo flaw\naffected:\n"
        "- package: {ecosystem: PyPI, name: Demo_Pkg}\n"
        "  ranges:\n  - {type: GIT, events: [{introduced: '0'}, {fixed: abc}]}\n"
        "  - {type: ECOSYSTEM, events: [{introduced: '0'}, {fixed: '2.0'}]}\n"
        "- package: {ecosystem: PyPI, name: other}\n  versions: ['1.0']\n"
    )
    built = build_snapshot(tmp_path, ["demo-pkg", "unrelated"], {"name": "test"})
    assert built["packages"] == {
        "demo-pkg": [
            {
                "id": "PYSEC-1",
                "aliases": [],
                "summary": "Demo flaw",
                "ranges": [[["introduced", "0"], ["fixed", "2.0"]]],
                "versions": [],
            }
        ],
        "unrelated": [],
    }
