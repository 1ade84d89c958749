"""The local EventBridge: pattern matching, PutEvents answers and delivery to rule targets."""

from __future__ import annotations

import json

import boto3
import pytest

from infra.event_bus import LocalEventBus, matches
from infra.template import EventRule, load_template


def test_patterns_match_like_eventbridge():
    pattern = {"source": ["msp.review"], "detail": {"action": ["accept", "reject"]}}
    assert matches(pattern, {"source": "msp.review", "detail": {"action": "reject", "x": 1}})
    assert not matches(pattern, {"source": "msp.review", "detail": {"action": "start_review"}})
    assert not matches(pattern, {"source": "other", "detail": {"action": "accept"}})
    assert not matches(pattern, {"source": "msp.review"})
    assert matches({"resources": ["a"]}, {"resources": ["b", "a"]})
    with pytest.raises(ValueError):
        matches({"source": [{"prefix": "msp"}]}, {"source": "msp.review"})


class RecordingRuntime:
    """Takes asynchronous invocations as Lambda does: at once, handled later (here: never)."""

    def __init__(self):
        self.calls = []

    def invoke_async(self, function, event):
        self.calls.append((function, event))
        return "request-id"

    def wait_async_idle(self):
        pass


def test_boto3_put_events_reaches_the_rule_target(monkeypatch):
    runtime = RecordingRuntime()
    rules = [EventRule("Notify", "Bus", {"source": ["msp.review"], "detail-type": ["CandidatureDecision"]})]
    bus = LocalEventBus(runtime, rules, {"Bus": "local-bus"})
    endpoint = bus.start()
    try:
        client = boto3.client(
            "events", endpoint_url=endpoint, region_name="eu-west-3", aws_access_key_id="x", aws_secret_access_key="x"
        )
        answer = client.put_events(
            Entries=[
                {
                    "Source": "msp.review",
                    "DetailType": "CandidatureDecision",
                    "Detail": '{"a": 1}',
                    "EventBusName": "local-bus",
                },
                {
                    "Source": "msp.other",
                    "DetailType": "CandidatureDecision",
                    "Detail": "{}",
                    "EventBusName": "local-bus",
                },
                {"Source": "msp.review", "DetailType": "CandidatureDecision", "Detail": "{}", "EventBusName": "nope"},
            ]
        )
        bus.wait_idle()
    finally:
        bus.stop()
    assert answer["FailedEntryCount"] == 1 and answer["Entries"][2]["ErrorCode"] == "ResourceNotFoundException"
    ((function, event),) = runtime.calls
    assert function == "Notify" and event["detail"] == {"a": 1}
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    json.dumps(event)


def test_the_template_wires_every_rule_to_a_declared_bus():
    template = load_template()
    assert template.event_rules, "the notifier must be an EventBridge rule target"
    for rule in template.event_rules:
        assert rule.bus in template.event_buses
        assert rule.function in template.functions
