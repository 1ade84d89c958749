"""GET /v1/stats?year=&department=: the latest tally's figures per department (reviewers: their own)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.http import caller_of, create_app, json_response, parse_query
from msp.storage.reports import report_store
from msp.tally.statistics import StatsQuery, read_statistics

logger = Logger()
app = create_app()


@app.get("/v1/stats")
def stats():
    query = parse_query(app, StatsQuery)
    answer = read_statistics(report_store(), caller_of(app), query, programme_today())
    return json_response(200, answer.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
