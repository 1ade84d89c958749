"""The HTTP API's access log, locally: the template's own AccessLogSettings format, its `$context` variables filled
with what the local gateway knows of each API request, one line per request appended to a file (the log group's
stand-in). A variable the gateway does not fill stops the stack at start: the template and the local lines cannot
drift apart."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+)")
CLAIMS = "authorizer.claims."
# The variables the local gateway fills (infra.gateway.Gateway.handle); an authorizer claim by its name.
KNOWN = frozenset(
    {
        "requestId",
        "requestTime",
        "identity.sourceIp",
        "identity.userAgent",
        "httpMethod",
        "routeKey",
        "status",
        "protocol",
        "responseLength",
        "responseLatency",
        "integrationLatency",
        "integrationErrorMessage",
        "error.message",
    }
)
# What API Gateway writes for a variable without a value.
ABSENT = "-"


def variables(line_format: str) -> list[str]:
    return _VARIABLE.findall(line_format)


class AccessLog:
    def __init__(self, line_format: str, path: Path):
        unknown = [name for name in variables(line_format) if name not in KNOWN and not name.startswith(CLAIMS)]
        if unknown:
            raise ValueError(f"the local gateway fills no $context.{unknown[0]}: add it to infra/gateway.py")
        self.line_format = line_format
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def line(self, context: dict[str, Any]) -> str:
        """The format with each variable's value, escaped for the JSON string it stands in."""

        def value(found: re.Match[str]) -> str:
            raw = context.get(found.group(1))
            return ABSENT if raw is None or raw == "" else json.dumps(str(raw), ensure_ascii=False)[1:-1]

        return _VARIABLE.sub(value, self.line_format)

    def write(self, context: dict[str, Any]) -> None:
        line = self.line(context)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
