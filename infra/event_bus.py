"""A local EventBridge: takes PutEvents on loopback and delivers matching events to the template's targets.

Functions publish with boto3 exactly as in AWS (the stack points AWS_ENDPOINT_URL_EVENTBRIDGE
here); each `EventBridgeRule` of template.yaml whose bus and pattern match gets the event, in the
envelope EventBridge sends to Lambda, asynchronously and in order, on one delivery thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from infra.components import REGION
from infra.lambda_runtime import LambdaRuntime
from infra.loopback_api import LoopbackApi, unknown_operation
from infra.template import EventRule

log = logging.getLogger("event-bus")

ACCOUNT = "000000000000"
_RETRIES = 2


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
        "account": ACCOUNT,
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
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[tuple[str, dict[str, Any], str]] = []
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
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
                    self._queue.put((rule.function, event))
        return {"FailedEntryCount": failed, "Entries": results}

    # -------------------------------------------------------------- delivery
    def _deliver(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                function, event = job
                for attempt in range(_RETRIES + 1):
                    try:
                        self.runtime.invoke(function, event)
                        self.delivered.append((function, event))
                        break
                    except Exception as error:
                        log.exception("%s failed on event %s (attempt %d)", function, event["id"], attempt + 1)
                        if attempt == _RETRIES:
                            self.failures.append((function, event, repr(error)))
            finally:
                self._queue.task_done()

    def wait_idle(self) -> None:
        """Block until every event put so far has been delivered (or has failed for good)."""
        self._queue.join()

    # -------------------------------------------------------------- lifecycle
    def _answer(self, _path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        target = headers.get("x-amz-target", "")
        if target != "AWSEvents.PutEvents":
            return unknown_operation(target)
        return 200, self.put_events(json.loads(body or b"{}").get("Entries", []))

    def start(self) -> str:
        self.server = LoopbackApi("event-bus-api", self._answer)
        endpoint = self.server.start()
        self._thread = threading.Thread(target=self._deliver, name="event-bus-delivery", daemon=True)
        self._thread.start()
        return endpoint

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
