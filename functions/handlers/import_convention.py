"""POST /v1/admin/conventions: record a convention that began before this service, as an accepted, listed
candidature (admins, Idempotency-Key)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.imports import ConventionImport, import_convention
from msp.clock import programme_today
from msp.http import caller_of, create_app, header, json_response, parse_body
from msp.idempotency import once_per_key
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.post("/v1/admin/conventions")
def create():
    caller = caller_of(app)
    request = parse_body(app, ConventionImport)
    candidature = once_per_key(
        "import_convention",
        caller,
        header(app, "Idempotency-Key"),
        payload=request.model_dump(mode="json", exclude_unset=True),
        compute=lambda: import_convention(candidature_store(), caller, request, programme_today()).public(),
        lambda_context=app.lambda_context,
    )
    return json_response(201, candidature, {"Location": f"/v1/candidatures/{candidature['id']}"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
