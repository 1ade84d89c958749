"""Runs the template's Lambda handlers in-process, the way the Lambda service would call them.

Synchronous invocations (the gateway, the token trigger) run in the caller's thread. Asynchronous ones (the bus's
rule targets, the bucket's notifications, Invoke with InvocationType Event on the local Lambda API) are accepted at
once and run in order on one thread; one that fails is retried as Lambda retries it, then its record goes to the
function's on-failure queue (the template's EventInvokeConfig).
"""

from __future__ import annotations

import datetime as dt
import heapq
import importlib
import itertools
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from infra.components import LOCAL_ACCOUNT, REGION
from infra.loopback_api import LoopbackApi
from infra.template import FUNCTIONS_DIR, Function, Template

log = logging.getLogger("lambda")

# Lambda waits a minute before the second attempt of a failed asynchronous invocation, two before the third.
RETRY_DELAYS = (60.0, 120.0)
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations(\?.*)?$")


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{LOCAL_ACCOUNT}:function:{logical_id}"


def function_name(reference: str) -> str:
    """The name in a function's ARN, qualified or not; a bare name as it is."""
    return reference.split(":function:")[-1].split(":")[0]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


class LambdaRuntime:
    """Invocations run one at a time, whichever the function.

    Lambda hands an execution environment one event at a time, and handlers rely on it: Powertools'
    resolver keeps the current event and context on a class attribute, shared by every handler of a
    process, so two invocations running together in this process would read each other's requests.
    The gateway still accepts requests concurrently; they wait here for their turn.
    """

    def __init__(self, template: Template):
        self.functions: dict[str, Function] = template.functions
        self._handlers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._invoking = threading.Lock()
        self.asynchronous: AsyncInvocations | None = None
        if str(FUNCTIONS_DIR) not in sys.path:
            sys.path.insert(0, str(FUNCTIONS_DIR))

    def handler(self, logical_id: str):
        with self._lock:
            if logical_id not in self._handlers:
                function = self.functions[logical_id]
                module = importlib.import_module(function.module)
                self._handlers[logical_id] = getattr(module, function.entry_point)
            return self._handlers[logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any], request_id: str | None = None) -> Any:
        function = self.functions[logical_id]
        handler = self.handler(logical_id)
        context = LambdaContext(logical_id, function.memory, function.timeout)
        if request_id is not None:
            context.aws_request_id = request_id
        with self._invoking:
            return handler(event, context)

    def invoke_async(self, logical_id: str, event: dict[str, Any]) -> str:
        """Accept an asynchronous invocation; its request id."""
        if self.asynchronous is None:
            raise RuntimeError("asynchronous invocations need the runtime's AsyncInvocations (start the local stack)")
        return self.asynchronous.accept(logical_id, event)

    def wait_async_idle(self) -> None:
        if self.asynchronous is not None:
            self.asynchronous.wait_idle()


# ---------------------------------------------------------------- asynchronous invocations


def error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    """The response of an invocation that raised, as Lambda's Python runtime writes it."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def destination_record(
    logical_id: str, request_id: str, payload: dict[str, Any], attempts: int, condition: str, response: dict[str, Any]
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination about an asynchronous invocation it gives up on."""
    return {
        "version": "1.0",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn(logical_id)}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": response,
    }


@dataclass(order=True)
class _Attempt:
    due: float
    sequence: int
    function: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    request_id: str = field(compare=False)
    accepted: float = field(compare=False)
    number: int = field(compare=False, default=1)


class AsyncInvocations:
    """Lambda's asynchronous invocation: accepted at once, run in order on one thread. A failed attempt is tried
    again after RETRY_DELAYS, as many times as the function's MaximumRetryAttempts allows while the event is younger
    than its MaximumEventAgeInSeconds; then `send_record(queue logical id, record)` gets Lambda's destination record,
    or, for a function without a destination, the event is dropped (logged) as Lambda drops it.

    `time_scale` shrinks every wait and age alike (0.01: the first retry after 0.6 s), for tests; 1 is Lambda's.
    """

    def __init__(
        self,
        runtime: LambdaRuntime,
        send_record: Callable[[str, dict[str, Any]], None],
        time_scale: float = 1.0,
    ):
        self.runtime = runtime
        self.send_record = send_record
        self.time_scale = time_scale
        self._pending: list[_Attempt] = []
        self._sequence = itertools.count()
        self._changed = threading.Condition()
        self._running = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def accept(self, function: str, event: dict[str, Any]) -> str:
        if function not in self.runtime.functions:
            raise KeyError(function)
        request_id = str(uuid.uuid4())
        now = time.monotonic()
        with self._changed:
            heapq.heappush(self._pending, _Attempt(now, next(self._sequence), function, event, request_id, now))
            self._changed.notify_all()
        return request_id

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every accepted invocation has succeeded or been given up (retries included)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._running, timeout)

    def _next_due(self) -> _Attempt | None:
        with self._changed:
            while not self._stopping:
                if self._pending and self._pending[0].due <= time.monotonic():
                    self._running += 1
                    return heapq.heappop(self._pending)
                wait = self._pending[0].due - time.monotonic() if self._pending else None
                self._changed.wait(wait)
            return None

    def _run(self) -> None:
        while (attempt := self._next_due()) is not None:
            try:
                self._attempt(attempt)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def _attempt(self, attempt: _Attempt) -> None:
        try:
            self.runtime.invoke(attempt.function, attempt.event, attempt.request_id)
            return
        except Exception as error:
            log.exception("%s failed (attempt %d, request %s)", attempt.function, attempt.number, attempt.request_id)
            response = error_payload(error, attempt.request_id)
        config = self.runtime.functions[attempt.function].async_invoke
        if attempt.number <= config.maximum_retry_attempts:
            delay = RETRY_DELAYS[min(attempt.number, len(RETRY_DELAYS)) - 1] * self.time_scale
            age_then = (time.monotonic() + delay - attempt.accepted) / self.time_scale
            if age_then <= config.maximum_event_age_seconds:
                self._retry(attempt, delay)
                return
            condition = "EventAgeExceeded"
        else:
            condition = "RetriesExhausted"
        record = destination_record(
            attempt.function, attempt.request_id, attempt.event, attempt.number, condition, response
        )
        if config.on_failure_queue is None:
            log.error("%s dropped request %s (%s): no destination", attempt.function, attempt.request_id, condition)
            return
        try:
            self.send_record(config.on_failure_queue, record)
        except Exception:
            log.exception("the record of request %s could not reach %s", attempt.request_id, config.on_failure_queue)

    def _retry(self, attempt: _Attempt, delay: float) -> None:
        again = replace(attempt, due=time.monotonic() + delay, sequence=next(self._sequence), number=attempt.number + 1)
        with self._changed:
            heapq.heappush(self._pending, again)
            self._changed.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lambda-async", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)


# ---------------------------------------------------------------- the Invoke API


class LocalLambdaApi:
    """Lambda's Invoke, asynchronous only (InvocationType Event): what a job's continuation and `make redrive`
    call. boto3 reaches it through AWS_ENDPOINT_URL_LAMBDA; a function is named by its logical id or its ARN."""

    def __init__(self, runtime: LambdaRuntime):
        self.runtime = runtime
        self.api = LoopbackApi("lambda-api", self._answer, content_type="application/json")

    def _answer(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        match = INVOKE_PATH.match(path)
        if match is None:
            return 404, {"__type": "UnknownOperationException", "message": f"Only Invoke is served here, not {path}."}
        if headers.get("x-amz-invocation-type") != "Event":
            message = "Only asynchronous invocations (InvocationType Event) are served here."
            return 400, {"__type": "InvalidParameterValueException", "message": message}
        name = function_name(unquote(match["name"]))
        try:
            event = json.loads(body or b"{}")
            self.runtime.invoke_async(name, event)
        except KeyError:
            return 404, {"__type": "ResourceNotFoundException", "message": f"Function not found: {name}"}
        except ValueError:
            return 400, {"__type": "InvalidRequestContentException", "message": "The payload is not JSON."}
        return 202, {}

    def start(self) -> str:
        return self.api.start()

    def stop(self) -> None:
        self.api.stop()
