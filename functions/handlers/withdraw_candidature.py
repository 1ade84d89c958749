"""POST /v1/candidatures/{candidature_id}/withdraw: the psychologist withdraws their candidature."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.use_cases import withdraw_candidature
from msp.http import caller_of, create_app, json_response, require_empty_body
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.post("/v1/candidatures/<candidature_id>/withdraw")
def withdraw(candidature_id: str):
    require_empty_body(app)
    candidature = withdraw_candidature(candidature_store(), caller_of(app), candidature_id)
    return json_response(200, candidature.public())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
