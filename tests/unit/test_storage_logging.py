"""Storage code logs through the function's Powertools logger: JSON lines of the function, with its service and
correlation id, never stdlib loggers of its own nor print."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from aws_lambda_powertools import Logger

from msp.candidatures.models import DecisionEvent, Status
from tests.storage_view import storage_modules

EVENT = DecisionEvent(candidature_id="c-1", version=3, action="accept", to_status=Status.ACCEPTED, at="2026-01-05")


@pytest.fixture
def function_lines(function_log):
    """The functions' JSON log lines while the test runs, with the correlation id an invocation would set."""
    function_logger = Logger()  # as every handler module creates it
    function_logger.set_correlation_id("request-1")
    yield lambda: [json.loads(line) for line in function_log.getvalue().splitlines()]
    function_logger.set_correlation_id(None)


def test_a_decision_event_the_bus_refuses_is_a_structured_line_of_the_function(function_lines, monkeypatch):
    from msp.storage import messaging

    class RefusingBus:
        def put_events(self, Entries):
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "Throttled", "ErrorMessage": "slow down"}]}

    monkeypatch.setattr(messaging, "events_client", RefusingBus)
    assert messaging.DecisionPublisher("bus").publish(EVENT) is False
    (line,) = function_lines()
    assert {key: line[key] for key in ("level", "message", "service", "correlation_id", "candidature_id")} == {
        "level": "ERROR",
        "message": "decision event refused by the bus",
        "service": os.environ["POWERTOOLS_SERVICE_NAME"],
        "correlation_id": "request-1",
        "candidature_id": "c-1",
    }
    assert line["refusals"] == [{"code": "Throttled", "message": "slow down"}]


def test_a_decision_event_not_published_is_logged_with_its_exception(function_lines, monkeypatch):
    from msp.storage import messaging

    class UnreachableBus:
        def put_events(self, Entries):
            raise ConnectionError("no route to the bus")

    monkeypatch.setattr(messaging, "events_client", UnreachableBus)
    assert messaging.DecisionPublisher("bus").publish(EVENT) is False
    (line,) = function_lines()
    assert (line["message"], line["correlation_id"], line["exception_name"]) == (
        "decision event not published",
        "request-1",
        "ConnectionError",
    )


def test_no_storage_module_logs_outside_the_functions_logger():
    for module in storage_modules():
        loggers = [value for value in vars(module).values() if isinstance(value, logging.Logger)]
        assert not loggers, f"{module.__name__} logs through a stdlib logger of its own"
        assert "print(" not in Path(module.__file__).read_text(encoding="utf-8"), f"{module.__name__} prints"
