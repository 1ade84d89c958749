"""GET /v1/psychologists/{psychologist_id}: a listed psychologist's public profile (public, cacheable)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.directory.listing import public_profile
from msp.http import PUBLIC_CACHE_HEADERS, create_app, json_response
from msp.storage.directory import directory_store

logger = Logger()
app = create_app()


@app.get("/v1/psychologists/<psychologist_id>")
def profile(psychologist_id: str):
    found = public_profile(directory_store(), psychologist_id, programme_today())
    return json_response(200, found.model_dump(mode="json"), PUBLIC_CACHE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
