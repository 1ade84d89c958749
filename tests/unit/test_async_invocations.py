"""The local Lambda's asynchronous invocations: retried as the template's EventInvokeConfig says, then Lambda's
destination record to the function's queue; the local Invoke API that accepts them."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.lambda_runtime import AsyncInvocations, LocalLambdaApi
from infra.template import AsyncInvokeConfig, Function

SCALE = 0.001  # Lambda's 60 s and 120 s waits take 60 ms and 120 ms


class ScriptedRuntime:
    """Functions that fail their first `failures[name]` attempts (all of them when absent), then succeed."""

    def __init__(self, configs: dict[str, AsyncInvokeConfig], failures: dict[str, int] | None = None):
        self.functions = {
            name: Function(name, f"handlers/{name}.handler", {}, [], 3, 128, "python3.12", "arm64", {}, config)
            for name, config in configs.items()
        }
        self.failures = failures or {}
        self.attempts: list[tuple[str, dict, str]] = []
        self.asynchronous: AsyncInvocations | None = None

    def invoke(self, function, event, request_id=None):
        self.attempts.append((function, event, request_id))
        tried = sum(1 for name, _, _ in self.attempts if name == function)
        if tried <= self.failures.get(function, 10**6):
            raise RuntimeError(f"{function} cannot send its e-mail")
        return {"ok": True}

    def invoke_async(self, function, event):
        assert self.asynchronous is not None
        return self.asynchronous.accept(function, event)


@pytest.fixture
def run():
    """run(runtime, *(function, event)): accept the invocations, wait until all are done; the records sent."""
    started = []

    def go(runtime, *invocations):
        records = []
        invoker = AsyncInvocations(runtime, lambda queue, record: records.append((queue, record)), SCALE)
        runtime.asynchronous = invoker
        invoker.start()
        started.append(invoker)
        ids = [invoker.accept(function, event) for function, event in invocations]
        assert invoker.wait_idle(timeout=10)
        return ids, records

    yield go
    for invoker in started:
        invoker.stop()


def test_a_failing_invocation_is_tried_three_times_then_its_record_goes_to_the_queue(run):
    runtime = ScriptedRuntime({"Notify": AsyncInvokeConfig(2, 21600, "NotifyFailures")})
    (request_id,), records = run(runtime, ("Notify", {"detail": {"candidature_id": "c1"}}))
    assert [a[2] for a in runtime.attempts] == [request_id] * 3  # one request id across the retries, as in Lambda
    ((queue, record),) = records
    assert queue == "NotifyFailures"
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:eu-west-3:000000000000:function:Notify:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"detail": {"candidature_id": "c1"}}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    response = record["responsePayload"]
    assert response["errorType"] == "RuntimeError" and response["errorMessage"] == "Notify cannot send its e-mail"
    assert response["requestId"] == request_id and response["stackTrace"]


def test_the_retries_follow_the_template_and_a_success_sends_nothing(run):
    runtime = ScriptedRuntime(
        {
            "Once": AsyncInvokeConfig(0, 21600, "OnceFailures"),
            "Recovers": AsyncInvokeConfig(2, 21600, "RecoversFailures"),
        },
        failures={"Recovers": 1},
    )
    _, records = run(runtime, ("Once", {"n": 1}), ("Recovers", {"n": 2}))
    assert [a[0] for a in runtime.attempts].count("Once") == 1
    assert [a[0] for a in runtime.attempts].count("Recovers") == 2
    assert [(queue, record["requestContext"]["approximateInvokeCount"]) for queue, record in records] == [
        ("OnceFailures", 1)
    ]


def test_an_event_too_old_for_the_next_retry_is_given_up_as_lambda_does(run):
    # The first retry comes a minute after the first attempt: an event may be 59 s old at most.
    runtime = ScriptedRuntime({"Digest": AsyncInvokeConfig(2, 59, "DigestFailures")})
    _, ((_, record),) = run(runtime, ("Digest", {}))
    assert len(runtime.attempts) == 1
    assert record["requestContext"]["condition"] == "EventAgeExceeded"


def test_without_a_destination_the_event_is_dropped_and_others_run_in_order(run):
    runtime = ScriptedRuntime({"Plain": AsyncInvokeConfig(0), "Other": AsyncInvokeConfig(0)}, failures={"Other": 0})
    _, records = run(runtime, ("Plain", {"n": 1}), ("Other", {"n": 2}), ("Other", {"n": 3}))
    assert records == []
    assert [event["n"] for _, event, _ in runtime.attempts] == [1, 2, 3]


def test_the_local_invoke_api_accepts_event_invocations_only(run):
    runtime = ScriptedRuntime({"Tally": AsyncInvokeConfig(0, 21600, "TallyFailures")}, failures={"Tally": 0})
    run(runtime)  # starts the invocations' thread
    api = LocalLambdaApi(runtime)
    client = boto3.client(
        "lambda", endpoint_url=api.start(), region_name="eu-west-3", aws_access_key_id="x", aws_secret_access_key="x"
    )
    try:
        qualified = "arn:aws:lambda:eu-west-3:000000000000:function:Tally:$LATEST"
        assert (
            client.invoke(FunctionName=qualified, InvocationType="Event", Payload=b'{"kind": "manual"}')["StatusCode"]
            == 202
        )
        assert client.invoke(FunctionName="Tally", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
        with pytest.raises(ClientError) as missing:
            client.invoke(FunctionName="Nope", InvocationType="Event", Payload=b"{}")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as synchronous:
            client.invoke(FunctionName="Tally", InvocationType="RequestResponse", Payload=b"{}")
        assert synchronous.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert runtime.asynchronous is not None and runtime.asynchronous.wait_idle(timeout=10)
    finally:
        api.stop()
    assert [event for _, event, _ in runtime.attempts] == [{"kind": "manual"}, {}]
