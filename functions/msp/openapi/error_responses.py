"""Error answers: the bodies msp.http and API Gateway send, and each status's response, its Retry-After derived
from ERROR_ANSWERS (msp/http_errors.py)."""

from __future__ import annotations

from typing import Any

from msp.errors import DomainError, LookupLimitReached
from msp.http_errors import ERROR_ANSWERS
from msp.openapi.operation import REF

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable, for programs: e.g. validation_error."},
                "message": {"type": "string", "description": "For people: what went wrong and what to do."},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "description": "One thing to fix: an invalid field's path and what is wrong with it, "
                        "or the facts of a conflict (e.g. current_version).",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        "additionalProperties": True,
                    },
                },
            },
        }
    },
}
# What API Gateway itself answers before any handler runs (bad token, throttling, oversized body).
GATEWAY_MESSAGE = {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}
ERROR_DESCRIPTIONS = {
    400: "Malformed request (JSON, header, cursor)",
    401: "Missing or invalid bearer token",
    403: "The caller's role may not use this route",
    404: "No such resource, or not in the caller's scope",
    409: "Conflicts with the current state",
    412: "Stale If-Match version",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid fields; details name each field path",
    428: "If-Match header required",
    429: "Too many requests",
    503: "Temporarily unavailable; retry after Retry-After seconds",
}
# Answered by API Gateway (GatewayMessage), by a handler (Error), or by either.
GATEWAY_ONLY = {429}
GATEWAY_OR_HANDLER = {401, 413}
RETRY_AFTER = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


def error_schemas() -> dict[str, Any]:
    return {"Error": ERROR, "GatewayMessage": GATEWAY_MESSAGE}


def error_response(status: int, by_the_route: bool) -> dict[str, Any]:
    """`by_the_route`: the route's own code may answer `status` too (a daily look-up limit's 429)."""
    error, gateway = {"$ref": REF.format(model="Error")}, {"$ref": REF.format(model="GatewayMessage")}
    body: dict[str, Any]
    if status in GATEWAY_ONLY and not by_the_route:
        body = gateway
    elif status in GATEWAY_OR_HANDLER | GATEWAY_ONLY:
        body = {"anyOf": [error, gateway]}
    else:
        body = error
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": body}},
    }
    retry_after = _retry_after(status) if by_the_route else None
    if retry_after:
        response["headers"] = {"Retry-After": retry_after}
    return response


def _retry_after(status: int) -> dict[str, Any] | None:
    """Documented when a refusal of that status sends it; required when every one does and API Gateway, which
    never sends it, cannot answer that status."""
    refusals = [kind for kind, answer in ERROR_ANSWERS.items() if answer.status == status]
    sending = [kind for kind in refusals if _sends_retry_after(kind)]
    if not sending:
        return None
    always = len(sending) == len(refusals) and status not in GATEWAY_ONLY | GATEWAY_OR_HANDLER
    return {"required": True} | RETRY_AFTER if always else RETRY_AFTER


def _sends_retry_after(kind: type[DomainError]) -> bool:
    """Its answer carries the header, or msp.http sets it (the daily look-up limit: what is left of the day)."""
    return "Retry-After" in ERROR_ANSWERS[kind].headers or issubclass(kind, LookupLimitReached)
