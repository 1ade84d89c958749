"""A local EventBridge: takes PutEvents on loopback and delivers matching events to the template's targets.

Functions publish with boto3 exactly as in AWS (the stack points AWS_ENDPOINT_URL_EVENTBRIDGE
here); each `EventBridgeRule` of template.yaml whose bus and pattern match gets the event, in the
envelope EventBridge sends to Lambda, as an asynchronous invocation: the runtime retries a failed one
and sends its record to the function's on-failure queue, as Lambda does.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from infra.components import LOCAL_ACCOUNT, REGION
from infra.lambda_runtime import LambdaRuntime
from infra.loopback_api import LoopbackApi, unknown_operation
from infra.template import EventRule


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge matching for the patterns the template uses: lists of exact values, nested objects."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(key in value and matches(child, value[key]) for key, child in pattern.items())
    if isinstance(pattern, list):
        if any(isinstance(p, dict) for p in pattern):
            raise ValueError(f"content filters are not supported by the local bus: {pattern}")
        values = value if isinstance(value, list) else [value]
        return any(v in pattern for v in values)
    raise ValueError(f"an event pattern leaf must be a list, not {pattern!r}")


def envelope(entry: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge hands it to a Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": LOCAL_ACCOUNT,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": entry.get("Resources", []),
        "detail": json.loads(entry["Detail"]),
    }


class LocalEventBus:
    def __init__(self, runtime: LambdaRuntime, rules: list[EventRule], bus_names: dict[str, str]):
        self.runtime = runtime
        self.rules = [(rule, bus_names[rule.bus]) for rule in rules]
        self.bus_names = set(bus_names.values())
        # What the bus handed to Lambda: (function, event), in order.
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self.server: LoopbackApi | None = None

    # -------------------------------------------------------------- the PutEvents API
    def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        results, failed = [], 0
        for entry in entries:
            bus = entry.get("EventBusName") or "default"
            bus = bus.rsplit("/", 1)[-1]  # an ARN names the bus after the last slash
            problem = None
            if bus not in self.bus_names:
                problem = ("ResourceNotFoundException", f"Event bus {bus} does not exist.")
            elif not all(entry.get(k) for k in ("Source", "DetailType", "Detail")):
                problem = ("InvalidArgument", "Source, DetailType and Detail are required.")
            else:
                try:
                    event = envelope(entry)
                except ValueError:
                    problem = ("MalformedDetail", "Detail is malformed.")
            if problem:
                failed += 1
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            results.append({"EventId": event["id"]})
            for rule, rule_bus in self.rules:
                if rule_bus == bus and matches(rule.pattern, event):
                    self.runtime.invoke_async(rule.function, event)
                    self.delivered.append((rule.function, event))
        return {"FailedEntryCount": failed, "Entries": results}

    def wait_idle(self) -> None:
        """Block until every event put so far has been handled by its targets (retries included)."""
        self.runtime.wait_async_idle()

    # -------------------------------------------------------------- lifecycle
    def _answer(self, _path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        target = headers.get("x-amz-target", "")
        if target != "AWSEvents.PutEvents":
            return unknown_operation(target)
        return 200, self.put_events(json.loads(body or b"{}").get("Entries", []))

    def start(self) -> str:
        self.server = LoopbackApi("event-bus-api", self._answer)
        return self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
