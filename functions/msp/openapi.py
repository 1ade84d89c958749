"""The OpenAPI 3.1 document of the API, generated from the pydantic models the handlers validate with.

`python -m msp.openapi > functions/openapi.json` rewrites the committed copy; a test fails when the
two differ or when a route of template.yaml is missing here.

What a request may hold comes from the models (their bounds, lengths, patterns and enums, and the
`Documented` keywords next to rules checked in Python); the headers' patterns from the code that checks
them. A string is trimmed of surrounding whitespace before it is checked.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from msp import if_match
from msp.candidatures.imports import ConventionImport
from msp.candidatures.leaving import ResignationRequest
from msp.candidatures.listing_edits import ListingChanges, ListingView
from msp.candidatures.models import (
    AuditEvent,
    CandidatureFields,
    DocumentKind,
    DocumentStatus,
    DocumentType,
    DocumentUploadRequest,
    DownloadTicket,
    QueuePage,
    Status,
)
from msp.candidatures.personal_data import Account, PersonalDataExport
from msp.candidatures.review import QueueQuery, TransitionRequest
from msp.candidatures.workflow import Action
from msp.directory.geojson import GEOJSON, PracticeFeatureCollection
from msp.directory.listing import PSYCHOLOGIST_ID_PATTERN, PublicProfile
from msp.directory.search import SearchPage, SearchQuery
from msp.idempotency_keys import KEY_PATTERN
from msp.open_statistics.figures import OpenStatistics, OpenStatsQuery
from msp.places.matching import PlaceQuery, PlaceSuggestions
from msp.reviewers.scope import SUB_PATTERN, ReviewerScope, ScopeAssignment, ScopeView
from msp.sessions.journal import PSYCHOLOGIST_SUB, JournalPage, JournalQuery
from msp.sessions.rules import DeclaredSession, QuotaQuery, QuotaStatus, SessionDeclaration
from msp.sessions.statements import MonthQuery, MonthStatement, SessionsQuery, StatementPage
from msp.tally.statistics import Statistics, StatsQuery

REF = "#/components/schemas/{model}"


# ---------------------------------------------------------------- answers built as dicts by the handlers


class DocumentView(BaseModel):
    """A document as every read of its candidature lists it."""

    document_id: str = Field(json_schema_extra={"format": "uuid"})
    kind: DocumentKind
    content_type: DocumentType
    status: DocumentStatus
    reason: str | None = Field(description="Why the document was rejected.")
    size: int | None = Field(description="Its size in bytes, once verified.")


class CandidatureState(BaseModel):
    """What every read of a candidature adds to its fields (Candidature.public)."""

    id: str = Field(json_schema_extra={"format": "uuid"})
    status: Status
    version: int = Field(ge=1, description="Send it back as If-Match (an edit) or expected_version (a decision).")
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})
    submitted_at: str | None = Field(json_schema_extra={"format": "date-time"})
    status_reason: str | None = Field(description="The reviewer's reason for the last decision.")
    department: str | None = Field(description="The department of its first practice.")
    documents: list[DocumentView]
    previous_candidature_id: str | None = Field(
        description="The candidature this one follows: the last one that held the same identifier."
    )
    convention_start: dt.date | None = Field(description="Once accepted: the convention's first day.")
    convention_end: dt.date | None = Field(description="Once an end is decided: the convention's last day.")
    allowed_actions: list[Action] | None = Field(
        default=None, description="For a reviewer of its department only: the decisions open to them now."
    )


class PresignedPost(BaseModel):
    """Post these form fields, then the file as the last field named `file`, to `url`."""

    url: str = Field(json_schema_extra={"format": "uri"})
    fields: dict[str, str]


class DocumentUpload(BaseModel):
    document_id: str = Field(json_schema_extra={"format": "uuid"})
    expires_in: int = Field(description="Seconds the upload stays possible.")
    upload: PresignedPost


class CandidatureHistory(BaseModel):
    candidature_id: str = Field(json_schema_extra={"format": "uuid"})
    events: list[AuditEvent]


# ---------------------------------------------------------------- errors, as msp.http and API Gateway answer them

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


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    pattern: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    roles: tuple[str, ...]
    status: int
    response: type[BaseModel] | dict[str, Any] | None
    # The statuses the route's own code answers; every route may also be throttled (429), and a route
    # with roles refuses a missing or invalid token (401).
    errors: tuple[int, ...]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    answer_headers: tuple[str, ...] = ()
    # Other representations of the success answer, by media type (chosen with the Accept header).
    alternatives: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def public(self) -> bool:
        return not self.roles

    @property
    def statuses(self) -> list[int]:
        gateway = {429} | ({401} if self.roles else set())
        return sorted(set(self.errors) | gateway)


CANDIDATURE = {"$ref": REF.format(model="Candidature")}
CSV = "text/csv"
FRENCH_CSV = {"type": "string", "description": "UTF-8 with BOM, ';' between fields, decimal comma"}
IDEMPOTENCY_KEY = Header(
    "Idempotency-Key", "Unique per intended creation (e.g. a UUID), sent again on a retry", KEY_PATTERN
)
IF_MATCH = Header("If-Match", "The version last read (its ETag), e.g. 3", if_match.PATTERN)
ADMIN = ("admins",)
PSYCHOLOGIST = ("psychologists",)
REVIEW = ("reviewers", "admins")
CANDIDATURE_READERS = ("psychologists", "reviewers", "admins")
PATH_PARAMETERS = {
    "candidature_id": {"type": "string", "format": "uuid"},
    "document_id": {"type": "string", "format": "uuid"},
    "session_id": {"type": "string", "format": "uuid"},
    "psychologist_id": {"type": "string", "pattern": PSYCHOLOGIST_ID_PATTERN},
    "psychologist_sub": {"type": "string", "pattern": PSYCHOLOGIST_SUB.pattern},
    "reviewer_sub": {"type": "string", "pattern": SUB_PATTERN},
}
# Response headers, by name.
ANSWER_HEADERS = {
    "ETag": {
        "description": "The candidature's version, for If-Match",
        "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
    },
    "Location": {"description": "The new candidature", "schema": {"type": "string"}},
    "Cache-Control": {"description": "Public answers may be kept a little while", "schema": {"type": "string"}},
    "Vary": {"description": "One URL, two representations: caches key on Accept", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "The file name to save it under", "schema": {"type": "string"}},
}

# Where a candidature's id and version go next: OpenAPI links, which stateful clients and fuzzers follow.
CANDIDATURE_LINKS = {
    "read": {"operationId": "get_candidatures_candidature_id", "parameters": {"candidature_id": "$response.body#/id"}},
    "edit": {
        "operationId": "patch_candidatures_candidature_id",
        "parameters": {"candidature_id": "$response.body#/id", "header.If-Match": "$response.body#/version"},
    },
    "upload": {
        "operationId": "post_candidatures_candidature_id_documents",
        "parameters": {"candidature_id": "$response.body#/id"},
    },
    "submit": {
        "operationId": "post_candidatures_candidature_id_submit",
        "parameters": {"candidature_id": "$response.body#/id"},
    },
    "withdraw": {
        "operationId": "post_candidatures_candidature_id_withdraw",
        "parameters": {"candidature_id": "$response.body#/id"},
    },
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/v1/candidatures",
        "Create a draft candidature",
        PSYCHOLOGIST,
        201,
        CANDIDATURE,
        (400, 403, 409, 413, 415, 422, 503),
        body=CandidatureFields,
        headers=(IDEMPOTENCY_KEY,),
        answer_headers=("Location",),
    ),
    Operation(
        "GET",
        "/v1/candidatures/{candidature_id}",
        "Read a candidature (own, or in the reviewer's scope)",
        CANDIDATURE_READERS,
        200,
        CANDIDATURE,
        (403, 404, 503),
        answer_headers=("ETag",),
    ),
    Operation(
        "PATCH",
        "/v1/candidatures/{candidature_id}",
        "Edit one's own draft; fields sent replace, null clears",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (400, 403, 404, 409, 412, 413, 415, 422, 428, 503),
        body=CandidatureFields,
        headers=(IF_MATCH,),
        answer_headers=("ETag",),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/documents",
        "Request a presigned S3 POST for a document",
        PSYCHOLOGIST,
        201,
        DocumentUpload,
        (400, 403, 404, 409, 412, 413, 415, 422, 503),
        body=DocumentUploadRequest,
    ),
    Operation(
        "GET",
        "/v1/candidatures/{candidature_id}/documents/{document_id}",
        "A download URL valid 5 minutes at most",
        CANDIDATURE_READERS,
        200,
        DownloadTicket,
        (403, 404, 409, 503),
    ),
    Operation(
        "GET",
        "/v1/candidatures/{candidature_id}/history",
        "The audit trail, oldest first",
        REVIEW,
        200,
        CandidatureHistory,
        (403, 404, 503),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/submit",
        "Submit a complete draft for review (no body)",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (403, 404, 409, 412, 413, 422, 503),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/transitions",
        "A reviewer's decision",
        REVIEW,
        200,
        CANDIDATURE,
        (400, 403, 404, 409, 413, 415, 422, 503),
        body=TransitionRequest,
        answer_headers=("ETag",),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/withdraw",
        "Withdraw one's own candidature (no body)",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (403, 404, 409, 412, 413, 422, 503),
    ),
    Operation(
        "GET",
        "/v1/review/candidatures",
        "The review queue, oldest submission first",
        REVIEW,
        200,
        QueuePage,
        (400, 403, 422, 503),
        query=QueueQuery,
    ),
    Operation(
        "POST",
        "/v1/sessions",
        "Declare a session against the patient's annual quota",
        PSYCHOLOGIST,
        201,
        DeclaredSession,
        (400, 403, 409, 413, 415, 422, 503),
        body=SessionDeclaration,
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        "POST",
        "/v1/sessions/quota",
        "Sessions used and remaining for a patient (NIR in the body; journaled; distinct patients a day limited)",
        PSYCHOLOGIST,
        200,
        QuotaStatus,
        (400, 403, 413, 415, 422, 429, 503),
        body=QuotaQuery,
    ),
    Operation(
        "DELETE",
        "/v1/sessions/{session_id}",
        "Cancel a session of a year still open, until its closing date (no body)",
        PSYCHOLOGIST,
        204,
        None,
        (403, 404, 409, 413, 422, 503),
    ),
    Operation(
        "GET",
        "/v1/admin/psychologists/{psychologist_sub}/access-journal",
        "A psychologist's quota look-ups, declarations and cancellations, newest first",
        ADMIN,
        200,
        JournalPage,
        (400, 403, 422, 503),
        query=JournalQuery,
    ),
    Operation(
        "POST",
        "/v1/admin/conventions",
        "Record a convention granted before this service, as an accepted, listed candidature",
        ADMIN,
        201,
        CANDIDATURE,
        (400, 403, 409, 413, 415, 422, 503),
        body=ConventionImport,
        headers=(IDEMPOTENCY_KEY,),
        answer_headers=("Location",),
    ),
    Operation(
        "GET",
        "/v1/stats",
        "The latest tally's figures per department",
        REVIEW,
        200,
        Statistics,
        (403, 404, 422, 503),
        query=StatsQuery,
    ),
    Operation(
        "GET",
        "/v1/psychologists/search",
        "Listed practices nearest a point, exact order by distance; GeoJSON with Accept: application/geo+json",
        (),
        200,
        SearchPage,
        (400, 422, 503),
        query=SearchQuery,
        answer_headers=("Cache-Control", "Vary"),
        alternatives=((GEOJSON, {"$ref": REF.format(model="PracticeFeatureCollection")}),),
    ),
    Operation(
        "GET",
        "/v1/psychologists/{psychologist_id}",
        "Public profile of a listed psychologist",
        (),
        200,
        PublicProfile,
        (404, 503),
        answer_headers=("Cache-Control",),
    ),
    Operation(
        "GET",
        "/v1/me",
        "The caller's candidatures (current first) and convention",
        PSYCHOLOGIST,
        200,
        Account,
        (403, 503),
    ),
    Operation(
        "GET",
        "/v1/me/listing",
        "The accepted psychologist's listing, availability and version (ETag)",
        PSYCHOLOGIST,
        200,
        ListingView,
        (403, 404, 503),
        answer_headers=("ETag",),
    ),
    Operation(
        "PATCH",
        "/v1/me/listing",
        "Edit one's listing; the directory follows at once. Identity fields: 422 identity_locked",
        PSYCHOLOGIST,
        200,
        ListingView,
        (400, 403, 404, 412, 413, 415, 422, 428, 503),
        body=ListingChanges,
        headers=(IF_MATCH,),
        answer_headers=("ETag",),
    ),
    Operation(
        "GET",
        "/v1/me/export",
        "Everything held about the caller (RGPD access), documents as short-lived links",
        PSYCHOLOGIST,
        200,
        PersonalDataExport,
        (403, 503),
        answer_headers=("Content-Disposition",),
    ),
    Operation(
        "POST",
        "/v1/convention/resign",
        "Leave the programme from an effective date (today or later)",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (400, 403, 404, 409, 412, 413, 415, 422, 503),
        body=ResignationRequest,
        answer_headers=("ETag",),
    ),
    Operation(
        "GET",
        "/v1/sessions",
        "The caller's declared sessions of a month, by date, with a pseudonymous patient reference",
        PSYCHOLOGIST,
        200,
        StatementPage,
        (400, 403, 422, 503),
        query=SessionsQuery,
    ),
    Operation(
        "GET",
        "/v1/sessions/statement",
        "A month's totals per payer, as JSON or (Accept: text/csv) a French CSV",
        PSYCHOLOGIST,
        200,
        MonthStatement,
        (403, 422, 503),
        query=MonthQuery,
        alternatives=((CSV, FRENCH_CSV),),
    ),
    Operation(
        "GET",
        "/v1/places",
        "Communes by name prefix or postcode, best first, each with a centre point",
        (),
        200,
        PlaceSuggestions,
        (422,),
        query=PlaceQuery,
        answer_headers=("Cache-Control",),
    ),
    Operation(
        "GET",
        "/v1/public/stats",
        "Open statistics of the latest tally: per department and closed month, counts under 11 suppressed",
        (),
        200,
        OpenStatistics,
        (404, 422, 503),
        query=OpenStatsQuery,
        answer_headers=("Cache-Control",),
    ),
    Operation(
        "GET",
        "/v1/openapi.json",
        "This document",
        (),
        200,
        {
            "type": "object",
            "required": ["openapi", "info", "paths", "components"],
            "properties": {
                "openapi": {"type": "string"},
                "info": {"type": "object", "additionalProperties": True},
                "paths": {"type": "object", "additionalProperties": True},
                "components": {"type": "object", "additionalProperties": True},
            },
        },
        (),
        answer_headers=("Cache-Control",),
    ),
    Operation(
        "GET",
        "/v1/admin/reviewers/{reviewer_sub}/departments",
        "A reviewer's departments and every change of them (admins)",
        ADMIN,
        200,
        ScopeView,
        (403, 404, 503),
        answer_headers=("ETag",),
    ),
    Operation(
        "PUT",
        "/v1/admin/reviewers/{reviewer_sub}/departments",
        "Set a reviewer's departments from their next token on (admins; audited)",
        ADMIN,
        200,
        ReviewerScope,
        (400, 403, 404, 412, 413, 415, 422, 428, 503),
        body=ScopeAssignment,
        headers=(IF_MATCH,),
        answer_headers=("ETag",),
    ),
)


# ---------------------------------------------------------------- building the document


def _without_closed_objects(schema: Any) -> Any:
    """Answers may carry more fields than a request may: responses never forbid extra properties."""
    if isinstance(schema, dict):
        return {
            k: _without_closed_objects(v) for k, v in schema.items() if k != "additionalProperties" or v is not False
        }
    if isinstance(schema, list):
        return [_without_closed_objects(v) for v in schema]
    return schema


def _without_null_defaults(schema: Any) -> Any:
    """pydantic's `"default": null` on every optional field, left out: a field left out is not a null one (a
    PATCH leaves it as it was), and generators take a field with a default for one the server always fills."""
    if isinstance(schema, dict):
        return {k: _without_null_defaults(v) for k, v in schema.items() if k != "default" or v is not None}
    if isinstance(schema, list):
        return [_without_null_defaults(v) for v in schema]
    return schema


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional property as the API reads or sends it (absent rather than null): `X | None` as X."""
    branches = [branch for branch in prop.get("anyOf", ()) if branch != {"type": "null"}]
    if "anyOf" not in prop or len(branches) != 1:
        return dict(prop)
    return branches[0] | {key: value for key, value in prop.items() if key != "anyOf"}


def _candidature_view(fields: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Candidature.public(): the fields given (None ones left out) and the state every read adds."""
    view = _without_closed_objects(copy.deepcopy(fields))
    view["title"] = "Candidature"
    view["description"] = "A candidature as every read returns it: the fields given so far, then its state."
    properties = view["properties"] | state["properties"]
    view["properties"] = {
        name: prop if name in state["required"] else _not_null(prop) for name, prop in properties.items()
    }
    view["required"] = state["required"]
    return view


def _response_models() -> list[type[BaseModel]]:
    answers = [op.response for op in OPERATIONS if isinstance(op.response, type)]
    return [*answers, PracticeFeatureCollection, CandidatureFields, CandidatureState]


def _components() -> dict[str, Any]:
    requests = {op.body for op in OPERATIONS if op.body} | {op.query for op in OPERATIONS if op.query}
    validation: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation") for m in sorted(requests, key=lambda m: m.__name__)
    ]
    serialization: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "serialization") for m in sorted(set(_response_models()), key=lambda m: m.__name__)
    ]
    _, request_schemas = models_json_schema(validation, ref_template=REF)
    _, response_schemas = models_json_schema(serialization, ref_template=REF)
    schemas = _without_null_defaults(request_schemas.get("$defs", {}))
    answers = _without_null_defaults(response_schemas.get("$defs", {}))
    for name, schema in answers.items():
        if name not in {"CandidatureFields", "CandidatureState"}:
            schemas.setdefault(name, _without_closed_objects(schema))
    schemas["Candidature"] = _candidature_view(answers["CandidatureFields"], answers["CandidatureState"])
    schemas["Error"] = ERROR
    schemas["GatewayMessage"] = GATEWAY_MESSAGE
    return schemas


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """One parameter per field, absent when not sent (an empty value counts as absent), never null."""
    schema = schemas[model.__name__]
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        value = _not_null(prop)
        value.pop("title", None)
        description = value.pop("description", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": value}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _error_response(status: int, by_the_route: bool) -> dict[str, Any]:
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
    if status == 503:
        response["headers"] = {"Retry-After": {"required": True} | RETRY_AFTER}
    elif status == 409 or (status == 429 and by_the_route):
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def _success(op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if op.answer_headers:
        success["headers"] = {name: {"required": True} | ANSWER_HEADERS[name] for name in op.answer_headers}
    if isinstance(op.response, type):
        success["content"] = {"application/json": {"schema": {"$ref": REF.format(model=op.response.__name__)}}}
    elif op.response is not None:
        success["content"] = {"application/json": {"schema": op.response}}
    success.get("content", {}).update({media: {"schema": schema} for media, schema in op.alternatives})
    if op.response == CANDIDATURE and PSYCHOLOGIST[0] in op.roles:
        success["links"] = CANDIDATURE_LINKS
    return success


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]} for name in _path_names(op.path)
    ]
    parameters += [
        {
            "name": header.name,
            "in": "header",
            "required": True,
            "description": header.description,
            "schema": {"type": "string", "pattern": header.pattern},
        }
        for header in op.headers
    ]
    if op.query:
        parameters += _query_parameters(op.query, schemas)
    return parameters


def build_document() -> dict[str, Any]:
    schemas = _components()
    parameters = [_parameters(op, schemas) for op in OPERATIONS]
    for query in {op.query for op in OPERATIONS if op.query}:
        del schemas[query.__name__]  # its fields are the operation's parameters
    paths: dict[str, Any] = {}
    for op, op_parameters in zip(OPERATIONS, parameters, strict=True):
        operation: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "parameters": op_parameters,
            "responses": {str(op.status): _success(op)}
            | {str(status): _error_response(status, status in op.errors) for status in op.statuses},
            "security": [] if op.public else [{"bearerAuth": []}],
        }
        if op.roles:
            operation["x-roles"] = list(op.roles)
        if op.body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mon soutien psy API",
            "version": "1.0.0",
            "description": "Candidatures, review, directory and session quotas of Mon soutien psy. "
            "Strings are trimmed of surrounding whitespace before they are checked.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(op: Operation) -> str:
    words = [p.strip("{}").replace(".", "_").replace("-", "_") for p in op.path.split("/")[2:] if p]
    return "_".join([op.method.lower(), *words])


def render() -> str:
    return json.dumps(build_document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
