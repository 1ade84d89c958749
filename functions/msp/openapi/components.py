"""The document's schemas: every request and answer model of the routes as JSON Schema, the candidature as every
read returns it, and the error bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from msp.candidatures.models import CandidatureFields
from msp.directory.geojson import PracticeFeatureCollection
from msp.openapi.answers import CandidatureState
from msp.openapi.error_responses import error_schemas
from msp.openapi.operation import REF, Operation

# Answer models no route names as its JSON answer: an alternative representation, and the two halves of the
# candidature view.
OTHER_ANSWERS: tuple[type[BaseModel], ...] = (PracticeFeatureCollection, CandidatureFields, CandidatureState)


def components(operations: Sequence[Operation]) -> dict[str, Any]:
    """Schemas by name: requests as they are validated, answers as they are sent (never closed to more fields)."""
    requests = {op.body for op in operations if op.body} | {op.query for op in operations if op.query}
    answers = {op.response for op in operations if isinstance(op.response, type)} | set(OTHER_ANSWERS)
    schemas = _schemas(requests, "validation")
    sent = _schemas(answers, "serialization")
    for name, schema in sent.items():
        if name not in {"CandidatureFields", "CandidatureState"}:
            schemas.setdefault(name, _without(schema, "additionalProperties", False))
    schemas["Candidature"] = _candidature_view(sent["CandidatureFields"], sent["CandidatureState"])
    return schemas | error_schemas()


def not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional property as the API reads or sends it (absent rather than null): `X | None` as X."""
    branches = [branch for branch in prop.get("anyOf", ()) if branch != {"type": "null"}]
    if "anyOf" not in prop or len(branches) != 1:
        return dict(prop)
    return branches[0] | {key: value for key, value in prop.items() if key != "anyOf"}


def _schemas(models: set[type[BaseModel]], mode: JsonSchemaMode) -> dict[str, Any]:
    """pydantic's `"default": null` on every optional field left out: a field left out is not a null one (a PATCH
    leaves it as it was), and generators take a field with a default for one the server always fills."""
    _, schemas = models_json_schema([(m, mode) for m in sorted(models, key=lambda m: m.__name__)], ref_template=REF)
    return _without(schemas.get("$defs", {}), "default", None)


def _without(schema: Any, key: str, value: Any) -> Any:
    """`schema` with every `key` whose value is `value` left out, at any depth."""
    if isinstance(schema, dict):
        return {k: _without(v, key, value) for k, v in schema.items() if k != key or v is not value}
    if isinstance(schema, list):
        return [_without(v, key, value) for v in schema]
    return schema


def _candidature_view(fields: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Candidature.public(): the fields given (None ones left out) and the state every read adds."""
    view = _without(fields, "additionalProperties", False)
    view["title"] = "Candidature"
    view["description"] = "A candidature as every read returns it: the fields given so far, then its state."
    properties = view["properties"] | state["properties"]
    view["properties"] = {
        name: prop if name in state["required"] else not_null(prop) for name, prop in properties.items()
    }
    view["required"] = state["required"]
    return view
