"""Rules declared once, for the validation and for the OpenAPI document.

pydantic documents what it enforces itself (bounds, lengths, patterns, enums). Two helpers cover the rest:
- `explained(message)` replaces pydantic's pattern refusal ("String should match pattern '^...$'") with a
  message that says what to fix, so a rule can be a `StringConstraints(pattern=...)`, checked and documented
  from that one declaration;
- `Documented(**keywords)` adds JSON Schema keywords for a rule a Python validator checks (a list of codes, a
  point inside France): as much of the rule as JSON Schema can say, next to the validator enforcing it;
  `never_null` does the same for a field a validator refuses to clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator

# Types only: pydantic.json_schema loads when a schema is built, never on a handler's cold start.
if TYPE_CHECKING:
    from pydantic import GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import CoreSchema


def explained(message: str) -> WrapValidator:
    """Refuses what the type's pattern refuses with `message`; other refusals (type, length) are unchanged."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            if any(problem["type"] == "string_pattern_mismatch" for problem in error.errors()):
                raise ValueError(message) from None
            raise

    return WrapValidator(check)


def never_null(schema: dict[str, Any]) -> None:
    """`Field(json_schema_extra=never_null)` on an `X | None = None` field that may be left out but not sent as
    null (a validator refuses null): its schema is X's."""
    (kept,) = [branch for branch in schema.pop("anyOf") if branch != {"type": "null"}]
    schema.update(kept)


class Documented:
    """`Annotated[str, AfterValidator(rule), Documented(enum=...)]`: keywords merged into the type's schema.

    A keyword's value may be a function, called when the schema is built (for values read from data files,
    which a handler's cold start should not pay for). Nothing here runs on a request.
    """

    def __init__(self, **keywords: Any | Callable[[], Any]):
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update({name: value() if callable(value) else value for name, value in self.keywords.items()})
        return schema
