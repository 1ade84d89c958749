"""The OpenAPI 3.1 document of the API, generated from the pydantic models the handlers validate with.

`python -m msp.openapi > functions/openapi.json` (make openapi) rewrites the committed copy; a test fails when
the two differ or when a route of template.yaml is missing here.

What a request may hold comes from the models (their bounds, lengths, patterns and enums, and the `Documented`
keywords next to rules checked in Python); the headers' patterns from the code that checks them. A string is
trimmed of surrounding whitespace before it is checked.

Where things are:
- routes.py: one entry a route (method, path, roles, status, models, errors, headers): a new route goes there;
- operation.py: what an entry holds, and the roles, headers, path parameters and links entries share;
- answers.py: the models of answers a handler builds as a dict (a candidature's state, an upload ticket);
- error_responses.py: the error bodies and each error status's response (Retry-After from ERROR_ANSWERS);
- components.py: the schemas, from the models; document.py: the paths, and the whole document.
"""

from msp.openapi.document import build_document, render
from msp.openapi.operation import PATH_PARAMETERS
from msp.openapi.routes import OPERATIONS

__all__ = ["OPERATIONS", "PATH_PARAMETERS", "build_document", "render"]
