"""POST /v1/candidatures: create a draft candidature (Idempotency-Key)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.models import CandidatureFields
from msp.candidatures.use_cases import create_candidature
from msp.http import caller_of, create_app, header, json_response, parse_body
from msp.idempotency import once_per_key
from msp.metrics import BusinessMetrics
from msp.storage.candidatures import candidature_store

logger = Logger()
metrics = BusinessMetrics(service="create-candidature")
app = create_app()


def _created(store, caller, fields) -> dict:
    """Runs once per Idempotency-Key: a replay answers the stored result and creates nothing, counts nothing."""
    candidature = create_candidature(store, caller, fields)
    metrics.candidature_created()
    return candidature.public()


@app.post("/v1/candidatures")
def create():
    caller = caller_of(app)
    fields = parse_body(app, CandidatureFields)
    candidature = once_per_key(
        "create_candidature",
        caller,
        header(app, "Idempotency-Key"),
        payload=fields.model_dump(mode="json", exclude_unset=True),
        compute=lambda: _created(candidature_store(), caller, fields),
        lambda_context=app.lambda_context,
    )
    return json_response(201, candidature, {"Location": f"/v1/candidatures/{candidature['id']}"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
