"""GET /v1/candidatures/{candidature_id}: its owner, or a reviewer of its department, reads it."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.review import read_candidature
from msp.http import caller_of, create_app, json_response
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.get("/v1/candidatures/<candidature_id>")
def read(candidature_id: str):
    body = read_candidature(candidature_store(), caller_of(app), candidature_id)
    return json_response(200, body, {"ETag": f'"{body["version"]}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
