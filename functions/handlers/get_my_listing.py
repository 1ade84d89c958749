"""GET /v1/me/listing: the accepted psychologist's listing as they edit it, with its version (ETag)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.listing_edits import read_listing
from msp.clock import programme_today
from msp.http import caller_of, create_app, json_response
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.get("/v1/me/listing")
def listing():
    view = read_listing(candidature_store(), caller_of(app), programme_today())
    return json_response(200, view.model_dump(mode="json"), {"ETag": f'"{view.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
