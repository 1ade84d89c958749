"""GET /v1/review/candidatures?status=&department=&cursor=&limit=: the reviewer's queue."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.review import QueueQuery, review_queue
from msp.http import caller_of, create_app, json_response, parse_query
from msp.storage.review_queue import review_queue_store

logger = Logger()
app = create_app()


@app.get("/v1/review/candidatures")
def queue():
    caller = caller_of(app)
    page = review_queue(review_queue_store(), caller, parse_query(app, QueueQuery))
    return json_response(200, page.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
