"""A decision notice that SES refuses, on the local stack: Lambda's retries, its record in the function's failures
queue (the local SQS server), then `make redrive`'s module, once SES sends again, which sends the notice and empties
the queue."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import boto3
import pytest

from infra.lambda_runtime import RETRY_DELAYS
from infra.local_stack import write_connection
from infra.template import ROOT

pytestmark = pytest.mark.integration

QUEUE = "NotifyDecisionFunctionFailures"


def _depth(sqs, url):
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _mails(stack, candidature_id):
    return sorted(stack.outbox.glob(f"*-{candidature_id}-v*.eml")) if stack.outbox.exists() else []


def _peek(sqs, url):
    """The queue's messages, left in it (visible again at once)."""
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)
        ],
    )
    return messages


def test_a_refused_notice_lands_in_its_queue_after_the_retries_and_is_redriven(api, stack, make_candidature, tmp_path):
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = stack.queue_url(QUEUE)
    assert _depth(sqs, url) == 0, "another test left a failed notice in the queue"
    candidature = make_candidature(department="75", status="in_review")
    stack.ses.refusal = "Email address is not verified."
    try:
        started = time.monotonic()
        body = {"action": "reject", "expected_version": 1, "reason": "Dossier incomplet."}
        response = api.call(
            "POST", f"/v1/candidatures/{candidature.id}/transitions", token=api.token("admin"), json=body
        )
        assert response.status_code == 200, response.text
        stack.events.wait_idle()
        waited = time.monotonic() - started
    finally:
        stack.ses.refusal = None

    # Three attempts (MaximumRetryAttempts 2), Lambda's waits between them, then the record: nothing was sent.
    assert waited >= sum(RETRY_DELAYS) * stack.async_time_scale
    assert _mails(stack, candidature.id) == []
    (message,) = _peek(sqs, url)
    record = json.loads(message["Body"])
    print("the record in", stack.names.by_logical_id[QUEUE], json.dumps(record, indent=1)[:1500])
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert record["version"] == "1.0"
    context = record["requestContext"]
    assert context["condition"] == "RetriesExhausted" and context["approximateInvokeCount"] == 3
    assert context["functionArn"].endswith(":function:NotifyDecisionFunction:$LATEST")
    assert record["requestPayload"]["detail-type"] == "CandidatureDecision"
    assert record["requestPayload"]["detail"]["candidature_id"] == candidature.id
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "MessageRejected"
    assert "Email address is not verified." in record["responsePayload"]["errorMessage"]

    # SES sends again: make redrive, on this stack (what make run writes, read the way LOCAL=1 reads it).
    connection = tmp_path / "connection.json"
    write_connection(stack, connection)
    redriven = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra.redrive",
            stack.names.by_logical_id[QUEUE],
            "--local",
            "--connection",
            str(connection),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert redriven.returncode == 0, redriven.stdout + redriven.stderr
    assert (
        "1: NotifyDecisionFunction invoked again (RetriesExhausted after 3 attempt(s), MessageRejected: "
        in redriven.stdout
    )
    assert "1 read, 1 redriven, 0 refused by Lambda, 0 of no known shape" in redriven.stdout
    stack.events.wait_idle()
    (mail,) = _mails(stack, candidature.id)
    assert "Dossier incomplet." in mail.read_text(encoding="utf-8")
    assert _depth(sqs, url) == 0
