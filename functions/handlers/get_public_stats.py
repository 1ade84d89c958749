"""GET /v1/public/stats?year=: the open statistics of the latest tally (public, cacheable for an hour)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.http import create_app, json_response, parse_query
from msp.open_statistics.figures import OPEN_STATS_CACHE_HEADERS, OpenStatsQuery, read_open_statistics
from msp.storage.reports import report_store

logger = Logger()
app = create_app()


@app.get("/v1/public/stats")
def public_stats():
    query = parse_query(app, OpenStatsQuery)
    figures = read_open_statistics(report_store(), query, programme_today())
    return json_response(200, figures.model_dump(mode="json"), OPEN_STATS_CACHE_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
