"""GET /v1/candidatures/{candidature_id}/history: the audit trail, oldest first (in-scope reviewers)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.review import candidature_history
from msp.http import caller_of, create_app, json_response
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.get("/v1/candidatures/<candidature_id>/history")
def history(candidature_id: str):
    events = candidature_history(candidature_store(), caller_of(app), candidature_id)
    return json_response(200, {"candidature_id": candidature_id, "events": [e.model_dump(mode="json") for e in events]})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
