"""The OpenAPI 3.1 document of the API, generated from the pydantic models the handlers validate with.

`python -m msp.openapi > functions/openapi.json` rewrites the committed copy; a test fails when the
two differ or when a route of template.yaml is missing here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from msp.candidatures.imports import ConventionImport
from msp.candidatures.leaving import ResignationRequest
from msp.candidatures.listing_edits import ListingChanges, ListingView
from msp.candidatures.models import AuditEvent, CandidatureFields, DocumentUploadRequest, DownloadTicket, QueuePage
from msp.candidatures.personal_data import Account, PersonalDataExport
from msp.candidatures.review import QueueQuery, TransitionRequest
from msp.directory.geojson import GEOJSON, PracticeFeatureCollection
from msp.directory.listing import PublicProfile
from msp.directory.search import SearchPage, SearchQuery
from msp.open_statistics.figures import OpenStatistics, OpenStatsQuery
from msp.places.matching import PlaceQuery, PlaceSuggestions
from msp.reviewers.scope import ReviewerScope, ScopeAssignment, ScopeView
from msp.sessions.journal import JournalPage, JournalQuery
from msp.sessions.rules import DeclaredSession, QuotaQuery, QuotaStatus, SessionDeclaration
from msp.sessions.statements import MonthQuery, MonthStatement, SessionsQuery, StatementPage
from msp.tally.statistics import Statistics, StatsQuery

REF = "#/components/schemas/{model}"

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array"},
            },
        }
    },
}
# What API Gateway itself answers before any handler runs (bad token, unknown route, throttling).
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
GATEWAY_STATUSES = {401, 404, 413, 429}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    roles: tuple[str, ...]
    status: int
    response: dict[str, Any] | None
    errors: tuple[int, ...]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: tuple[tuple[str, bool, str, str], ...] = field(default_factory=tuple)
    # Other representations of the success answer, by media type (chosen with the Accept header).
    alternatives: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def public(self) -> bool:
        return not self.roles


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


CANDIDATURE = {"$ref": REF.format(model="Candidature")}
CSV = "text/csv"
FRENCH_CSV = {"type": "string", "description": "UTF-8 with BOM, ';' between fields, decimal comma"}
IDEMPOTENCY_KEY = ("Idempotency-Key", True, "Unique per intended creation", r"^[A-Za-z0-9_\-:.]{8,128}$")
IF_MATCH = ("If-Match", True, "The version last read, e.g. 3", r"^[0-9]{1,9}$")
ADMIN = ("admins",)
PSYCHOLOGIST = ("psychologists",)
REVIEW = ("reviewers", "admins")
CANDIDATURE_READERS = ("psychologists", "reviewers", "admins")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/v1/candidatures",
        "Create a draft candidature",
        PSYCHOLOGIST,
        201,
        CANDIDATURE,
        (400, 401, 403, 409, 413, 415, 422, 503),
        body=CandidatureFields,
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        "GET",
        "/v1/candidatures/{candidature_id}",
        "Read a candidature (own, or in the reviewer's scope)",
        CANDIDATURE_READERS,
        200,
        CANDIDATURE,
        (401, 403, 404, 503),
    ),
    Operation(
        "PATCH",
        "/v1/candidatures/{candidature_id}",
        "Edit one's own draft; fields sent replace, null clears",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 503),
        body=CandidatureFields,
        headers=(IF_MATCH,),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/documents",
        "Request a presigned S3 POST for a document",
        PSYCHOLOGIST,
        201,
        {
            "type": "object",
            "required": ["document_id", "upload"],
            "properties": {
                "document_id": {"type": "string"},
                "expires_in": {"type": "integer"},
                "upload": {
                    "type": "object",
                    "required": ["url", "fields"],
                    "properties": {
                        "url": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
        },
        (401, 403, 404, 409, 412, 413, 415, 422, 503),
        body=DocumentUploadRequest,
    ),
    Operation(
        "GET",
        "/v1/candidatures/{candidature_id}/documents/{document_id}",
        "A download URL valid 5 minutes at most",
        CANDIDATURE_READERS,
        200,
        _ref(DownloadTicket),
        (401, 403, 404, 409, 503),
    ),
    Operation(
        "GET",
        "/v1/candidatures/{candidature_id}/history",
        "The audit trail, oldest first",
        REVIEW,
        200,
        {
            "type": "object",
            "required": ["candidature_id", "events"],
            "properties": {
                "candidature_id": {"type": "string"},
                "events": {"type": "array", "items": _ref(AuditEvent)},
            },
        },
        (401, 403, 404, 503),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/submit",
        "Submit a complete draft for review",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (401, 403, 404, 409, 412, 422, 503),
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/transitions",
        "A reviewer's decision",
        REVIEW,
        200,
        CANDIDATURE,
        (401, 403, 404, 409, 413, 415, 422, 503),
        body=TransitionRequest,
    ),
    Operation(
        "POST",
        "/v1/candidatures/{candidature_id}/withdraw",
        "Withdraw one's own candidature",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (401, 403, 404, 409, 412, 422, 503),
    ),
    Operation(
        "GET",
        "/v1/review/candidatures",
        "The review queue, oldest submission first",
        REVIEW,
        200,
        _ref(QueuePage),
        (400, 401, 403, 422, 503),
        query=QueueQuery,
    ),
    Operation(
        "POST",
        "/v1/sessions",
        "Declare a session against the patient's annual quota",
        PSYCHOLOGIST,
        201,
        _ref(DeclaredSession),
        (400, 401, 403, 409, 413, 415, 422, 503),
        body=SessionDeclaration,
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        "POST",
        "/v1/sessions/quota",
        "Sessions used and remaining for a patient (NIR in the body; journaled; distinct patients a day limited)",
        PSYCHOLOGIST,
        200,
        _ref(QuotaStatus),
        (400, 401, 403, 413, 415, 422, 429, 503),
        body=QuotaQuery,
    ),
    Operation(
        "DELETE",
        "/v1/sessions/{session_id}",
        "Cancel a session of a year still open (until its closing date)",
        PSYCHOLOGIST,
        204,
        None,
        (401, 403, 404, 409, 422, 503),
    ),
    Operation(
        "GET",
        "/v1/admin/psychologists/{psychologist_sub}/access-journal",
        "A psychologist's quota look-ups, declarations and cancellations, newest first",
        ("admins",),
        200,
        _ref(JournalPage),
        (400, 401, 403, 422, 503),
        query=JournalQuery,
    ),
    Operation(
        "POST",
        "/v1/admin/conventions",
        "Record a convention granted before this service, as an accepted, listed candidature",
        ("admins",),
        201,
        CANDIDATURE,
        (400, 401, 403, 409, 413, 415, 422, 503),
        body=ConventionImport,
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        "GET",
        "/v1/stats",
        "The latest tally's figures per department",
        REVIEW,
        200,
        _ref(Statistics),
        (401, 403, 404, 422, 503),
        query=StatsQuery,
    ),
    Operation(
        "GET",
        "/v1/psychologists/search",
        "Listed practices nearest a point, exact order by distance; GeoJSON with Accept: application/geo+json",
        (),
        200,
        _ref(SearchPage),
        (400, 422),
        query=SearchQuery,
        alternatives=((GEOJSON, _ref(PracticeFeatureCollection)),),
    ),
    Operation(
        "GET",
        "/v1/psychologists/{psychologist_id}",
        "Public profile of a listed psychologist",
        (),
        200,
        _ref(PublicProfile),
        (404,),
    ),
    Operation(
        "GET",
        "/v1/me",
        "The caller's candidatures (current first) and convention",
        PSYCHOLOGIST,
        200,
        _ref(Account),
        (401, 403, 503),
    ),
    Operation(
        "GET",
        "/v1/me/listing",
        "The accepted psychologist's listing, availability and version (ETag)",
        PSYCHOLOGIST,
        200,
        _ref(ListingView),
        (401, 403, 503),
    ),
    Operation(
        "PATCH",
        "/v1/me/listing",
        "Edit one's listing; the directory follows at once. Identity fields: 422 identity_locked",
        PSYCHOLOGIST,
        200,
        _ref(ListingView),
        (400, 401, 403, 412, 413, 415, 422, 428, 503),
        body=ListingChanges,
        headers=(IF_MATCH,),
    ),
    Operation(
        "GET",
        "/v1/me/export",
        "Everything held about the caller (RGPD access), documents as short-lived links",
        PSYCHOLOGIST,
        200,
        _ref(PersonalDataExport),
        (401, 403, 503),
    ),
    Operation(
        "POST",
        "/v1/convention/resign",
        "Leave the programme from an effective date (today or later)",
        PSYCHOLOGIST,
        200,
        CANDIDATURE,
        (400, 401, 403, 409, 413, 415, 422, 503),
        body=ResignationRequest,
    ),
    Operation(
        "GET",
        "/v1/sessions",
        "The caller's declared sessions of a month, by date, with a pseudonymous patient reference",
        PSYCHOLOGIST,
        200,
        _ref(StatementPage),
        (400, 401, 403, 422, 503),
        query=SessionsQuery,
    ),
    Operation(
        "GET",
        "/v1/sessions/statement",
        "A month's totals per payer, as JSON or (Accept: text/csv) a French CSV",
        PSYCHOLOGIST,
        200,
        _ref(MonthStatement),
        (401, 403, 422, 503),
        query=MonthQuery,
        alternatives=((CSV, FRENCH_CSV),),
    ),
    Operation(
        "GET",
        "/v1/places",
        "Communes by name prefix or postcode, best first, each with a centre point",
        (),
        200,
        _ref(PlaceSuggestions),
        (422,),
        query=PlaceQuery,
    ),
    Operation(
        "GET",
        "/v1/public/stats",
        "Open statistics of the latest tally: per department and closed month, counts under 11 suppressed",
        (),
        200,
        _ref(OpenStatistics),
        (404, 422, 503),
        query=OpenStatsQuery,
    ),
    Operation("GET", "/v1/openapi.json", "This document", (), 200, {"type": "object"}, ()),
    Operation(
        "GET",
        "/v1/admin/reviewers/{reviewer_sub}/departments",
        "A reviewer's departments and every change of them (admins)",
        ADMIN,
        200,
        _ref(ScopeView),
        (401, 403, 404, 503),
    ),
    Operation(
        "PUT",
        "/v1/admin/reviewers/{reviewer_sub}/departments",
        "Set a reviewer's departments from their next token on (admins; audited)",
        ADMIN,
        200,
        _ref(ReviewerScope),
        (400, 401, 403, 404, 412, 413, 415, 422, 428, 503),
        body=ScopeAssignment,
        headers=(IF_MATCH,),
    ),
)


def _without_closed_objects(schema: Any) -> Any:
    """Answers may carry more fields than a request may: responses never forbid extra properties."""
    if isinstance(schema, dict):
        return {
            k: _without_closed_objects(v) for k, v in schema.items() if k != "additionalProperties" or v is not False
        }
    if isinstance(schema, list):
        return [_without_closed_objects(v) for v in schema]
    return schema


def _components() -> dict[str, Any]:
    requests = {op.body for op in OPERATIONS if op.body} | {op.query for op in OPERATIONS if op.query}
    responses: set[type[BaseModel]] = {
        AuditEvent,
        DownloadTicket,
        QueuePage,
        DeclaredSession,
        QuotaStatus,
        JournalPage,
        Statistics,
        SearchPage,
        PublicProfile,
        Account,
        ListingView,
        PersonalDataExport,
        StatementPage,
        MonthStatement,
        PlaceSuggestions,
        PracticeFeatureCollection,
        OpenStatistics,
        ReviewerScope,
        ScopeView,
    }
    validation: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "validation") for m in sorted(requests, key=lambda m: m.__name__)
    ]
    serialization: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (m, "serialization") for m in sorted(responses, key=lambda m: m.__name__)
    ]
    _, request_schemas = models_json_schema(validation, ref_template=REF)
    _, response_schemas = models_json_schema(serialization, ref_template=REF)
    schemas = dict(request_schemas.get("$defs", {}))
    for name, schema in response_schemas.get("$defs", {}).items():
        schemas.setdefault(name, _without_closed_objects(schema))
    view = _without_closed_objects(copy.deepcopy(schemas["CandidatureFields"]))
    view["title"] = "Candidature"
    view["required"] = ["id", "status", "version", "documents"]
    view["properties"] |= {
        "id": {"type": "string"},
        "status": {
            "type": "string",
            "enum": [
                "draft",
                "submitted",
                "in_review",
                "info_requested",
                "accepted",
                "rejected",
                "deconventioned",
                "withdrawn",
            ],
        },
        "version": {"type": "integer", "minimum": 1},
        "previous_candidature_id": {"type": ["string", "null"]},
        "convention_start": {"type": ["string", "null"], "format": "date"},
        "convention_end": {"type": ["string", "null"], "format": "date"},
        "documents": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["document_id", "kind", "status"],
                "properties": {
                    "document_id": {"type": "string"},
                    "kind": {"type": "string"},
                    "status": {"type": "string"},
                    "reason": {"type": ["string", "null"]},
                },
            },
        },
    }
    schemas["Candidature"] = view
    schemas["Error"] = ERROR
    schemas["GatewayMessage"] = GATEWAY_MESSAGE
    return schemas


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = schemas[model.__name__]
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def _error_response(status: int) -> dict[str, Any]:
    error = {"$ref": REF.format(model="Error")}
    body = {"anyOf": [error, {"$ref": REF.format(model="GatewayMessage")}]} if status in GATEWAY_STATUSES else error
    return {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": body}}}


def _success_response(op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": op.response}} | {
            media: {"schema": schema} for media, schema in op.alternatives
        }
    return success


def build_document() -> dict[str, Any]:
    schemas = _components()
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in _path_names(op.path)
        ]
        parameters += [
            {
                "name": name,
                "in": "header",
                "required": required,
                "description": text,
                "schema": {"type": "string", "pattern": pattern},
            }
            for name, required, text, pattern in op.headers
        ]
        if op.query:
            parameters += _query_parameters(op.query, schemas)
        responses = {str(op.status): _success_response(op)} | {str(s): _error_response(s) for s in op.errors}
        operation: dict[str, Any] = {
            "operationId": _operation_id(op),
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
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
            "description": "Candidatures, review, directory and session quotas of Mon soutien psy.",
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
