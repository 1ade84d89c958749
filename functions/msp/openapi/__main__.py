"""`python -m msp.openapi` (make openapi): the document on standard output, as functions/openapi.json holds it."""

from msp.openapi.document import render

print(render(), end="")
