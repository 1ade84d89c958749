"""make redrive's module on moto's SQS: what it invokes again, when it deletes, what it leaves, its bounds."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra import redrive
from infra.lambda_runtime import destination_record

FUNCTION = "arn:aws:lambda:eu-west-3:111122223333:function:msp-prod-NotifyDecisionFunction-AbC"


class LambdaClient:
    """Lambda's Invoke: records what it accepts; refuses the functions named in `refusing`."""

    def __init__(self, refusing: frozenset[str] = frozenset()):
        self.refusing = refusing
        self.invoked: list[tuple[str, str, dict]] = []

    def invoke(self, FunctionName, InvocationType, Payload):
        if any(name in FunctionName for name in self.refusing):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Invoke")
        self.invoked.append((FunctionName, InvocationType, json.loads(Payload)))
        return {"StatusCode": 202}


@pytest.fixture
def sqs(monkeypatch):
    monkeypatch.setattr(redrive, "WAIT_SECONDS", 0)  # moto answers at once: no need to wait for an empty queue
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("sqs", region_name="eu-west-3")
        client.create_queue(QueueName="msp-prod-NotifyDecisionFunction-failures")
        yield client


def _url(sqs):
    return sqs.get_queue_url(QueueName="msp-prod-NotifyDecisionFunction-failures")["QueueUrl"]


def _record(number: int) -> str:
    record = destination_record(
        "NotifyDecisionFunction", f"request-{number}", {"detail": {"n": number}}, 3, "RetriesExhausted", {}
    )
    record["requestContext"]["functionArn"] = f"{FUNCTION}:$LATEST"
    return json.dumps(record)


def _depth(sqs) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=_url(sqs), AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_destination_records_are_invoked_again_and_deleted_once_accepted(sqs):
    for number in range(3):
        sqs.send_message(QueueUrl=_url(sqs), MessageBody=_record(number))
    lambda_client, said = LambdaClient(), []
    summary = redrive.redrive(sqs, lambda_client, "msp-prod-NotifyDecisionFunction-failures", say=said.append)
    assert sorted(event["detail"]["n"] for _, _, event in lambda_client.invoked) == [0, 1, 2]
    assert {(name, kind) for name, kind, _ in lambda_client.invoked} == {(f"{FUNCTION}:$LATEST", "Event")}
    assert (summary.read, summary.redriven, summary.left, summary.ok) == (3, 3, 0, True)
    assert said[0].startswith("1: msp-prod-NotifyDecisionFunction-AbC invoked again (RetriesExhausted after 3")


def test_an_event_eventbridge_could_not_deliver_is_invoked_with_the_event(sqs):
    event = {"source": "msp.review", "detail-type": "CandidatureDecision", "detail": {"candidature_id": "c1"}}
    attributes = {
        "TARGET_ARN": {"DataType": "String", "StringValue": FUNCTION},
        "ERROR_CODE": {"DataType": "String", "StringValue": "NO_PERMISSIONS"},
    }
    sqs.send_message(QueueUrl=_url(sqs), MessageBody=json.dumps(event), MessageAttributes=attributes)
    lambda_client = LambdaClient()
    summary = redrive.redrive(sqs, lambda_client, _url(sqs), say=lambda _: None)
    assert lambda_client.invoked == [(FUNCTION, "Event", event)]
    assert (summary.redriven, summary.left) == (1, 0)


def test_what_is_not_redriven_stays_visible_in_the_queue(sqs):
    sqs.send_message(QueueUrl=_url(sqs), MessageBody="not a record")
    sqs.send_message(QueueUrl=_url(sqs), MessageBody=json.dumps({"some": "event"}))
    sqs.send_message(QueueUrl=_url(sqs), MessageBody=_record(1))
    summary = redrive.redrive(sqs, LambdaClient(refusing=frozenset({"NotifyDecision"})), _url(sqs), say=lambda _: None)
    assert (summary.read, summary.redriven, summary.refused, summary.unknown, summary.ok) == (3, 0, 1, 2, False)
    assert summary.left == 3  # visible again at once, for the next run


def test_a_dry_run_invokes_nothing_and_keeps_everything(sqs):
    sqs.send_message(QueueUrl=_url(sqs), MessageBody=_record(1))
    lambda_client, said = LambdaClient(), []
    summary = redrive.redrive(sqs, lambda_client, _url(sqs), dry_run=True, say=said.append)
    assert lambda_client.invoked == [] and (summary.previewed, summary.left) == (1, 1)
    assert "would get its event again" in said[0]


def test_a_run_reads_at_most_its_limit_in_batches_of_ten(sqs):
    for number in range(25):
        sqs.send_message(QueueUrl=_url(sqs), MessageBody=_record(number))
    received = []
    receive = sqs.receive_message

    def counting(**request):
        received.append(request["MaxNumberOfMessages"])
        return receive(**request)

    sqs.receive_message = counting
    lambda_client = LambdaClient()
    summary = redrive.redrive(sqs, lambda_client, _url(sqs), limit=12, say=lambda _: None)
    assert (summary.read, summary.redriven, len(lambda_client.invoked)) == (12, 12, 12)
    assert received[:2] == [10, 2] and max(received) <= 10
    assert _depth(sqs) == 13


def test_an_unknown_queue_and_missing_credentials_say_what_to_do(sqs, monkeypatch, capsys, tmp_path):
    with pytest.raises(redrive.RedriveError, match="msp-<stage>-<Function>-failures"):
        redrive.redrive(sqs, LambdaClient(), "msp-prod-Nope-failures")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert redrive.main(["msp-prod-NotifyDecisionFunction-failures"]) == 1
    assert "No AWS credentials found" in capsys.readouterr().err
    assert redrive.main(["x", "--local", "--connection", str(tmp_path / "missing.json")]) == 1
    assert "make run is not running" in capsys.readouterr().err
