"""GET /v1/me: the caller's candidatures (current first) and convention."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.personal_data import my_account
from msp.http import caller_of, create_app, json_response
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.get("/v1/me")
def me():
    return json_response(200, my_account(candidature_store(), caller_of(app)).model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
