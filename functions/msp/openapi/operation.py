"""What an entry of the routes table (routes.py) holds, and the words its entries share: roles, request headers,
path parameters, response headers and the links that follow a candidature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from msp import if_match
from msp.directory.listing import PSYCHOLOGIST_ID_PATTERN
from msp.idempotency_keys import KEY_PATTERN
from msp.reviewers.scope import SUB_PATTERN
from msp.sessions.journal import PSYCHOLOGIST_SUB

REF = "#/components/schemas/{model}"


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


# Who may call a route: the groups of the caller's token (an empty tuple: anyone, without a token).
ADMIN = ("admins",)
PSYCHOLOGIST = ("psychologists",)
REVIEW = ("reviewers", "admins")
CANDIDATURE_READERS = ("psychologists", "reviewers", "admins")

# The answer of every route that returns a candidature (components.py builds it from two models).
CANDIDATURE = {"$ref": REF.format(model="Candidature")}
CSV = "text/csv"
FRENCH_CSV = {"type": "string", "description": "UTF-8 with BOM, ';' between fields, decimal comma"}

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key", "Unique per intended creation (e.g. a UUID), sent again on a retry", KEY_PATTERN
)
IF_MATCH = Header("If-Match", "The version last read (its ETag), e.g. 3", if_match.PATTERN)

# Every `{name}` a route's path may hold, with the pattern its handler checks.
PATH_PARAMETERS = {
    "candidature_id": {"type": "string", "format": "uuid"},
    "document_id": {"type": "string", "format": "uuid"},
    "session_id": {"type": "string", "format": "uuid"},
    "psychologist_id": {"type": "string", "pattern": PSYCHOLOGIST_ID_PATTERN},
    "psychologist_sub": {"type": "string", "pattern": PSYCHOLOGIST_SUB.pattern},
    "reviewer_sub": {"type": "string", "pattern": SUB_PATTERN},
}
# Response headers, by name (an operation's answer_headers).
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
