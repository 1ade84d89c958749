"""The tally's Lambda handler on moto: it goes on in a new invocation of itself when it stops before the timeout."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from infra.lambda_runtime import LambdaContext
from infra.provision import table_definition
from infra.template import load_template


@pytest.fixture
def tally(moto_env, monkeypatch):
    from handlers import tally_sessions

    with mock_aws():
        template = load_template()
        boto3.client("dynamodb", region_name="eu-west-3").create_table(
            **table_definition("msp-unit-sessions", template.tables["SessionsTable"])
        )
        boto3.client("s3", region_name="eu-west-3").create_bucket(
            Bucket="msp-unit-documents", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        invoked = []
        monkeypatch.setattr(tally_sessions, "invoke_async", lambda name, payload: invoked.append((name, payload)))
        yield tally_sessions, invoked


def context(seconds: int) -> LambdaContext:
    return LambdaContext("msp-tally-sessions-prod", 1024, seconds)


def test_out_of_time_it_invokes_itself_with_the_run_to_resume(tally, monkeypatch, capsys):
    handler, invoked = tally
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "msp-tally-sessions-prod")
    outcome = handler.handler({"year": 2024, "run_id": "r1", "repair": True}, context(30))  # under the 60 s margin
    assert outcome["status"] == "incomplete"
    ((name, payload),) = invoked
    assert name == "msp-tally-sessions-prod"
    assert payload | {"checkpoint_seconds": None} == payload | {
        "kind": "manual",
        "year": 2024,
        "run_id": "r1",
        "repair": True,
        "continuation": 1,
        "checkpoint_seconds": None,
    }
    assert '"_aws"' not in capsys.readouterr().out  # not finished: no metric yet
    finished = handler.handler(payload, context(900))
    assert finished["status"] == "complete" and finished["totals"]["sessions"] == 0
    assert len(invoked) == 1
    # The line the alarm on an absent TallyFinished reads: the service its only dimension.
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]] and line["service"] == "tally-sessions"
    assert [metric["Name"] for metric in directive["Metrics"]] == [
        "TallyFinished",
        "TallyDriftsFound",
        "TallyDriftsRepaired",
    ]
    assert (line["TallyFinished"], line["TallyDriftsFound"], line["TallyDriftsRepaired"]) == ([1.0], [0.0], [0.0])


def test_outside_lambda_it_returns_incomplete_for_the_caller_to_invoke_again(tally):
    handler, invoked = tally
    outcome = handler.handler({"year": 2024, "run_id": "r1"}, context(30))
    assert outcome["status"] == "incomplete" and invoked == []
    assert handler.handler({"year": 2024, "run_id": "r1"}, context(900))["status"] == "complete"
