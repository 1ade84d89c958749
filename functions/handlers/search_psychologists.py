"""GET /v1/psychologists/search?lat=&lon=&radius_km=&limit=&cursor=&public=&teleconsultation=&language=&name=:
the nearest listed practices (public, cacheable)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.config import settings
from msp.directory.search import SearchQuery, search_nearest
from msp.http import PUBLIC_CACHE_HEADERS, create_app, json_response, parse_query
from msp.storage.directory import directory_store

logger = Logger()
app = create_app()


@app.get("/v1/psychologists/search")
def search():
    query = parse_query(app, SearchQuery)
    secret = settings().search_cursor_secret.get_secret_value().encode()
    page = search_nearest(directory_store(), query, cursor_secret=secret)
    return json_response(200, page.model_dump(mode="json"), PUBLIC_CACHE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
