"""GET /v1/places?q=&limit=: communes by name prefix or postcode, each with a centre point (public, cacheable)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.http import create_app, json_response, parse_query
from msp.places.catalogue import place_index
from msp.places.matching import PLACES_CACHE_HEADERS, PlaceQuery, suggest_places

logger = Logger()
app = create_app()
# Loaded while the execution environment initialises, so no request waits for it.
INDEX = place_index()


@app.get("/v1/places")
def places():
    query = parse_query(app, PlaceQuery)
    return json_response(200, suggest_places(INDEX, query).model_dump(mode="json"), PLACES_CACHE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
