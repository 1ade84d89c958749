"""Runs the template's Lambda handlers in-process, the way the Lambda service would call them."""

from __future__ import annotations

import importlib
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.template import FUNCTIONS_DIR, Function, Template


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
        return f"arn:aws:lambda:eu-west-3:000000000000:function:{self.function_name}"

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
        if str(FUNCTIONS_DIR) not in sys.path:
            sys.path.insert(0, str(FUNCTIONS_DIR))

    def handler(self, logical_id: str):
        with self._lock:
            if logical_id not in self._handlers:
                function = self.functions[logical_id]
                module = importlib.import_module(function.module)
                self._handlers[logical_id] = getattr(module, function.entry_point)
            return self._handlers[logical_id]

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        function = self.functions[logical_id]
        handler = self.handler(logical_id)
        with self._invoking:
            return handler(event, LambdaContext(logical_id, function.memory, function.timeout))
