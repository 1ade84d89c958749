"""GET /v1/admin/reviewers/{reviewer_sub}/departments: a reviewer's departments and who changed them."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.http import caller_of, create_app, json_response
from msp.reviewers.scope import reviewer_scope
from msp.storage.reviewer_scopes import reviewer_scope_store

logger = Logger()
app = create_app()


@app.get("/v1/admin/reviewers/<reviewer_sub>/departments")
def read(reviewer_sub: str):
    view = reviewer_scope(reviewer_scope_store(), caller_of(app), reviewer_sub)
    return json_response(200, view.model_dump(mode="json"), {"ETag": f'"{view.scope.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
