"""`make redrive QUEUE=<name>`: invoke a function again with what it failed, from its failures queue.

    python -m infra.redrive msp-prod-NotifyDecisionFunction-failures [--limit 100] [--dry-run] [--local]

The same code in AWS (credentials and region from the environment, as the AWS CLI finds them) and on `make run`'s
stack (--local: the endpoints and local credentials it wrote in .local/connection.json). A message is one of:

- Lambda's on-failure destination record (the function failed its retries): requestContext.functionArn names the
  function, requestPayload is the event it failed on;
- an event EventBridge could not deliver (the decision rule's dead-letter queue): the message body is the event,
  its TARGET_ARN attribute names the function.

Each is sent again as an asynchronous invocation (Invoke, InvocationType Event) of that function with that event,
and its message is deleted only once Lambda has accepted the invocation (202). An invocation that fails again comes
back to the queue after the function's retries, with a new record. Messages are read ten at a time, at most
`--limit` in one run; what is not redriven (a message of another shape, an invocation Lambda refused, a dry run)
is made visible again at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.lambda_runtime import function_name

BATCH = 10  # SQS's largest receive
# Long polling: an empty answer after a second means the queue has nothing visible (short polling samples servers).
WAIT_SECONDS = 1
# Long enough for a batch's invocations; what is kept is made visible again at the end of the run anyway.
VISIBILITY_SECONDS = 120


class RedriveError(RuntimeError):
    """The redrive cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class FailedInvocation:
    function_arn: str
    payload: Any
    why: str  # what the record says of the failure, for the progress lines

    @property
    def function_name(self) -> str:
        return function_name(self.function_arn)


def failed_invocation(message: dict[str, Any]) -> FailedInvocation | None:
    """What a queue message asks to invoke again, or None for a message of no known shape."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        return None
    context = body.get("requestContext") if isinstance(body, dict) else None
    if isinstance(context, dict) and "functionArn" in context and "requestPayload" in body:
        response = body.get("responsePayload") or {}
        error = f"{response.get('errorType', '')}: {response.get('errorMessage', '')}" if response else "no response"
        why = f"{context.get('condition')} after {context.get('approximateInvokeCount')} attempt(s), {error}"
        return FailedInvocation(context["functionArn"], body["requestPayload"], why)
    attributes = message.get("MessageAttributes", {})
    target = attributes.get("TARGET_ARN", {}).get("StringValue")
    if target and ":function:" in target:
        code = attributes.get("ERROR_CODE", {}).get("StringValue", "")
        return FailedInvocation(target, body, f"not delivered by EventBridge ({code})")
    return None


@dataclass
class Summary:
    read: int = 0
    redriven: int = 0
    previewed: int = 0  # dry run: would have been redriven
    refused: int = 0  # Lambda did not accept the invocation
    unknown: int = 0  # a message of no known shape
    left: int | None = None  # visible in the queue after the run
    kept: list[str] = field(default_factory=list)  # receipt handles to make visible again

    @property
    def ok(self) -> bool:
        return not self.refused and not self.unknown


def queue_url(sqs, queue: str) -> str:
    if queue.startswith(("https://", "http://")):
        return queue
    try:
        return sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except ClientError as error:
        raise RedriveError(
            f"No queue {queue!r} here ({error}). The failure queues are msp-<stage>-<Function>-failures."
        ) from error


def _invoke(lambda_client, failed: FailedInvocation) -> str | None:
    """Send the event again, asynchronously; None once Lambda accepted it, else why not."""
    try:
        answer = lambda_client.invoke(
            FunctionName=failed.function_arn, InvocationType="Event", Payload=json.dumps(failed.payload).encode()
        )
    except (BotoCoreError, ClientError) as error:
        return str(error)
    return None if answer["StatusCode"] == 202 else f"status {answer['StatusCode']}"


def _handle(message: dict[str, Any], lambda_client, dry_run: bool, summary: Summary, say: Callable[[str], None]):
    failed = failed_invocation(message)
    summary.read += 1
    number = summary.read
    if failed is None:
        summary.unknown += 1
        summary.kept.append(message["ReceiptHandle"])
        say(f"{number}: message {message['MessageId']} is no failed invocation record: left in the queue")
        return None
    if dry_run:
        summary.previewed += 1
        summary.kept.append(message["ReceiptHandle"])
        say(f"{number}: {failed.function_name} would get its event again ({failed.why})")
        return None
    refusal = _invoke(lambda_client, failed)
    if refusal is not None:
        summary.refused += 1
        summary.kept.append(message["ReceiptHandle"])
        say(f"{number}: {failed.function_name} did not accept the invocation ({refusal}): left in the queue")
        return None
    summary.redriven += 1
    say(f"{number}: {failed.function_name} invoked again ({failed.why})")
    return message["ReceiptHandle"]


def redrive(
    sqs, lambda_client, queue: str, *, limit: int = 100, dry_run: bool = False, say: Callable[[str], None] = print
) -> Summary:
    url = queue_url(sqs, queue)
    summary = Summary()
    while summary.read < limit:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(BATCH, limit - summary.read),
            VisibilityTimeout=VISIBILITY_SECONDS,
            WaitTimeSeconds=WAIT_SECONDS,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        done = [_handle(message, lambda_client, dry_run, summary, say) for message in messages]
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(done) if handle is not None]
        if entries:
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    for start in range(0, len(summary.kept), BATCH):
        handles = summary.kept[start : start + BATCH]
        entries = [{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(handles)]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    summary.left = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return summary


def _local_environment(connection: Path) -> dict[str, str]:
    from infra.local_stack import read_connection

    if not connection.exists():
        raise RedriveError(f"make run is not running ({connection} is missing): start it, or drop LOCAL=1 for AWS.")
    return read_connection(connection)


def _aws_region() -> str:
    """The region the environment names; RedriveError without it or without credentials AWS accepts."""
    from infra.deploy import DeployError, caller_identity

    region = boto3.Session().region_name or os.environ.get("AWS_REGION")
    if not region:
        raise RedriveError("No AWS region: set AWS_REGION (eu-west-3 for this service) or a profile's region.")
    try:
        caller_identity(region)
    except DeployError as error:
        raise RedriveError(str(error)) from error
    return region


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("queue", help="the failures queue: its name (msp-<stage>-<Function>-failures) or URL")
    parser.add_argument("--limit", type=int, default=100, help="messages read at most in this run (default 100)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be invoked, change nothing")
    parser.add_argument("--local", action="store_true", help="make run's stack instead of AWS")
    parser.add_argument("--connection", type=Path, default=None, help="with --local: another connection file")
    arguments = parser.parse_args(argv)
    try:
        if arguments.local:
            from infra.run import CONNECTION_FILE

            os.environ.update(_local_environment(arguments.connection or CONNECTION_FILE))
            region = os.environ["AWS_REGION"]
        else:
            region = _aws_region()
        summary = redrive(
            boto3.client("sqs", region_name=region),
            boto3.client("lambda", region_name=region),
            arguments.queue,
            limit=max(1, arguments.limit),
            dry_run=arguments.dry_run,
        )
    except RedriveError as error:
        print(error, file=sys.stderr)
        return 1
    done = f"{summary.previewed} would be redriven" if arguments.dry_run else f"{summary.redriven} redriven"
    print(
        f"{arguments.queue}: {summary.read} read, {done}, {summary.refused} refused by Lambda, "
        f"{summary.unknown} of no known shape; about {summary.left} message(s) left in the queue."
    )
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
