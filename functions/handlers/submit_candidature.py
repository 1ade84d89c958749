"""POST /v1/candidatures/{candidature_id}/submit: send a complete draft for review."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.use_cases import submit_candidature
from msp.http import caller_of, create_app, json_response, require_empty_body
from msp.metrics import BusinessMetrics
from msp.storage.candidatures import candidature_store
from msp.storage.messaging import decision_publisher

logger = Logger()
metrics = BusinessMetrics(service="submit-candidature")
app = create_app()


@app.post("/v1/candidatures/<candidature_id>/submit")
def submit(candidature_id: str):
    require_empty_body(app)
    candidature = submit_candidature(candidature_store(), decision_publisher(), caller_of(app), candidature_id)
    metrics.candidature_submitted()
    return json_response(200, candidature.public())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
