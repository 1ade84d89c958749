"""GET /v1/candidatures/{candidature_id}/documents/{document_id}: a download URL valid 5 minutes."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.review import document_download
from msp.http import caller_of, create_app, json_response
from msp.storage.candidatures import candidature_store
from msp.storage.documents import document_bucket

logger = Logger()
app = create_app()


@app.get("/v1/candidatures/<candidature_id>/documents/<document_id>")
def download(candidature_id: str, document_id: str):
    ticket = document_download(candidature_store(), document_bucket(), caller_of(app), candidature_id, document_id)
    return json_response(200, ticket.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
