"""HTTP edge shared by every route: the resolver, request parsing and the one error mapping."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, ValidationError

from msp.auth import Caller
from msp.errors import (
    BodyTooLarge,
    DomainError,
    InvalidFields,
    LookupLimitReached,
    MalformedJson,
    NotJson,
)
from msp.headers import SECURITY_HEADERS
from msp.http_errors import answer_for
from msp.idempotency_keys import checked_key
from msp.if_match import version_in

MAX_BODY_BYTES = 64 * 1024
# No request model nests half as deep; past Python's recursion limit the parser itself would fail.
MAX_JSON_DEPTH = 32
Model = TypeVar("Model", bound=BaseModel)

logger = Logger()

# Public answers (no token, same for everyone) may be kept by the CDN and browsers for a minute:
# a deconventioned psychologist leaves cached answers within that minute.
PUBLIC_CACHE_HEADERS = {"Cache-Control": "public, max-age=60"}


def json_response(
    status: int, body: Any, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> Response:
    # A model serializes itself: pydantic's encoder takes a fifth of the time of json.dumps on its dump.
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body, ensure_ascii=False)
    return Response(
        status_code=status,
        content_type=content_type,
        body=text,
        headers=SECURITY_HEADERS | (headers or {}),
    )


def error_response(
    status: int, code: str, message: str, details: list | None = None, headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, {"error": {"code": code, "message": message, "details": details or []}}, headers)


def _validation_details(error: ValidationError) -> list[dict[str, str]]:
    details = []
    for problem in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field: remove it"
        details.append({"field": path or "body", "message": message})
    return details


def create_app() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response:
        answer = answer_for(error)
        logger.info("request refused", extra={"status": answer.status, "code": answer.code})
        headers = dict(answer.headers)
        if isinstance(error, LookupLimitReached):
            headers["Retry-After"] = str(error.retry_after_seconds)
        return error_response(answer.status, answer.code, error.message, error.details, headers)

    @app.exception_handler(ValidationError)
    def _invalid(error: ValidationError) -> Response:
        return error_response(422, "validation_error", "The request has invalid fields.", _validation_details(error))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unexpected error")
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")

    @app.not_found
    def _no_route(_: Exception) -> Response:
        return error_response(404, "not_found", "No such route.")

    return app


def caller_of(app: APIGatewayHttpResolver) -> Caller:
    claims = app.current_event.request_context.authorizer.jwt_claim
    return Caller.from_claims(claims)


def raw_body(app: APIGatewayHttpResolver) -> str:
    event = app.current_event
    body = event.decoded_body if event.is_base64_encoded else event.body
    if body is None:
        return ""
    if len(body.encode()) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"The body exceeds {MAX_BODY_BYTES // 1024} KB.")
    return body


def parse_body(app: APIGatewayHttpResolver, model: type[Model]) -> Model:
    """The JSON body validated against `model`; every failure is a 4xx naming what to fix."""
    body = raw_body(app)
    content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise NotJson("Send the body as JSON with 'Content-Type: application/json'.")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise MalformedJson(f"The body is not valid JSON: {error}.") from error
    except RecursionError:
        raise _too_deep() from None
    if _nests_deeper(document, MAX_JSON_DEPTH):
        raise _too_deep()
    if not isinstance(document, dict):
        raise InvalidFields(
            "The body must be a JSON object.", details=[{"field": "body", "message": "expected an object"}]
        )
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidFields("The request has invalid fields.", details=_validation_details(error)) from error


def _too_deep() -> MalformedJson:
    return MalformedJson(f"The body nests arrays and objects more than {MAX_JSON_DEPTH} deep.")


def _nests_deeper(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` deep (iteratively: depth must not cost stack)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def parse_query(app: APIGatewayHttpResolver, model: type[Model]) -> Model:
    """The query string validated against `model` (422 naming the parameter), never quoting what was sent.

    An empty parameter (`?department=`, as a form sends it) counts as absent.
    """
    parameters = app.current_event.query_string_parameters or {}
    try:
        return model.model_validate({name: value for name, value in parameters.items() if value != ""})
    except ValidationError as error:
        raise InvalidFields("The query has invalid parameters.", details=_validation_details(error)) from error


def require_empty_body(app: APIGatewayHttpResolver) -> None:
    if raw_body(app).strip():
        raise InvalidFields("This route takes no body.", details=[{"field": "body", "message": "send no body"}])


def if_match_version(app: APIGatewayHttpResolver) -> int:
    return version_in(app.current_event.headers.get("if-match"))


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    return app.current_event.headers.get(name.lower())


def idempotency_key(app: APIGatewayHttpResolver) -> str:
    """The request's Idempotency-Key, or 400."""
    return checked_key(header(app, "Idempotency-Key"))
