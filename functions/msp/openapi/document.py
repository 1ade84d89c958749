"""The document: one path item an operation of the routes table, the components, the bearer scheme."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from msp.openapi.components import components, not_null
from msp.openapi.error_responses import error_response
from msp.openapi.operation import (
    ANSWER_HEADERS,
    CANDIDATURE,
    CANDIDATURE_LINKS,
    PATH_PARAMETERS,
    PSYCHOLOGIST,
    REF,
    Operation,
)
from msp.openapi.routes import OPERATIONS


def build_document() -> dict[str, Any]:
    schemas = components(OPERATIONS)
    parameters = [_parameters(op, schemas) for op in OPERATIONS]
    for query in {op.query for op in OPERATIONS if op.query}:
        del schemas[query.__name__]  # its fields are the operation's parameters
    paths: dict[str, Any] = {}
    for op, op_parameters in zip(OPERATIONS, parameters, strict=True):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, op_parameters)
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


def render() -> str:
    return json.dumps(build_document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _operation(op: Operation, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "parameters": parameters,
        "responses": {str(op.status): _success(op)}
        | {str(status): error_response(status, status in op.errors) for status in op.statuses},
        "security": [] if op.public else [{"bearerAuth": []}],
    }
    if op.roles:
        operation["x-roles"] = list(op.roles)
    if op.body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}},
        }
    return operation


def _operation_id(op: Operation) -> str:
    words = [p.strip("{}").replace(".", "_").replace("-", "_") for p in op.path.split("/")[2:] if p]
    return "_".join([op.method.lower(), *words])


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


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


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """One parameter per field, absent when not sent (an empty value counts as absent), never null."""
    schema = schemas[model.__name__]
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        value = not_null(prop)
        value.pop("title", None)
        description = value.pop("description", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": value}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


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
