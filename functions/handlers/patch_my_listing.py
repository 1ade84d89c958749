"""PATCH /v1/me/listing: edit one's listing under If-Match; the directory follows in the same transaction."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.listing_edits import ListingChanges, edit_listing
from msp.clock import programme_today
from msp.http import caller_of, create_app, if_match_version, json_response, parse_body
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.patch("/v1/me/listing")
def patch():
    caller = caller_of(app)
    version = if_match_version(app)
    changes = parse_body(app, ListingChanges)
    view = edit_listing(candidature_store(), caller, changes, version, programme_today())
    logger.info("listing edited", extra={"psychologist_id": view.psychologist_id, "version": view.version})
    return json_response(200, view.model_dump(mode="json"), {"ETag": f'"{view.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
