"""POST /v1/candidatures/{candidature_id}/documents: a presigned S3 POST for one document."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.models import DocumentUploadRequest
from msp.candidatures.use_cases import request_document_upload
from msp.http import caller_of, create_app, json_response, parse_body
from msp.storage.candidatures import candidature_store
from msp.storage.documents import document_bucket

logger = Logger()
app = create_app()


@app.post("/v1/candidatures/<candidature_id>/documents")
def request_upload(candidature_id: str):
    caller = caller_of(app)
    request = parse_body(app, DocumentUploadRequest)
    ticket = request_document_upload(candidature_store(), document_bucket(), caller, candidature_id, request)
    return json_response(
        201,
        {
            "document_id": ticket.document_id,
            "expires_in": ticket.expires_in,
            "upload": {"url": ticket.url, "fields": ticket.fields},
        },
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
