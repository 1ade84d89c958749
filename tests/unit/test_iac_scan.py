"""The checkov baseline: every failing check explained by one line, and no line left explaining nothing."""

from __future__ import annotations

import pytest

from infra.iac_scan import BASELINE, Exemption, compare, failed_checks, read_baseline

REPORT = [
    {
        "check_type": "cloudformation",
        "results": {
            "failed_checks": [
                {"check_id": "CKV_AWS_117", "resource": "AWS::Serverless::Function.A", "file_path": "/template.yaml"},
                {"check_id": "CKV_AWS_117", "resource": "AWS::Serverless::Function.B", "file_path": "/template.yaml"},
                {"check_id": "CKV_AWS_18", "resource": "AWS::S3::Bucket.Logs", "file_path": "/template.yaml"},
            ]
        },
    }
]


def test_a_failure_no_line_explains_and_a_line_explaining_nothing_both_fail():
    failed = failed_checks(REPORT)
    exemptions = [
        Exemption("CKV_AWS_117", "AWS::Serverless::Function.*", "no VPC needed"),
        Exemption("CKV_AWS_35", "AWS::CloudTrail::Trail.*", "stale"),
    ]
    unexplained, unused = compare(failed, exemptions)
    assert unexplained == [("CKV_AWS_18", "AWS::S3::Bucket.Logs", "template.yaml")]
    assert [e.check_id for e in unused] == ["CKV_AWS_35"]


def test_every_committed_line_has_a_check_a_resource_glob_and_a_reason():
    exemptions = read_baseline()
    assert exemptions and all(e.check_id.startswith("CKV") and len(e.reason) > 30 for e in exemptions)
    assert len({(e.check_id, e.resources) for e in exemptions}) == len(exemptions)


def test_a_line_without_its_reason_is_refused(tmp_path):
    baseline = tmp_path / BASELINE.name
    baseline.write_text("# comment\nCKV_AWS_18 | AWS::S3::Bucket.Logs |\n")
    with pytest.raises(ValueError, match="why it does not apply"):
        read_baseline(baseline)
