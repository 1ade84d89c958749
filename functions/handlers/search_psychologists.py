"""GET /v1/psychologists/search?lat=&lon=&radius_km=&limit=&cursor=&public=&teleconsultation=&language=&name=:
the nearest listed practices (public, cacheable), as JSON or, for `Accept: application/geo+json`, GeoJSON."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.directory.geojson import GEOJSON, feature_collection, prefers_geojson
from msp.directory.search import SearchQuery, search_nearest
from msp.http import PUBLIC_CACHE_HEADERS, create_app, header, json_response, parse_query
from msp.metrics import BusinessMetrics
from msp.storage.directory_cache import cached_directory_store
from msp.storage.secrets import search_cursor_keys

logger = Logger()
metrics = BusinessMetrics(service="search-psychologists")
app = create_app()


@app.get("/v1/psychologists/search")
def search():
    query = parse_query(app, SearchQuery)
    page = search_nearest(cached_directory_store(), query, cursor_keys=search_cursor_keys())
    metrics.search_answered(len(page.results))
    # One URL, two representations: caches must key on Accept.
    headers = PUBLIC_CACHE_HEADERS | {"Vary": "Accept"}
    if prefers_geojson(header(app, "Accept")):
        return json_response(200, feature_collection(page), headers, content_type=GEOJSON)
    return json_response(200, page, headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
