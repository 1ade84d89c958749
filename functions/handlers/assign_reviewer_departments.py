"""PUT /v1/admin/reviewers/{reviewer_sub}/departments: an admin sets a reviewer's departments (audited)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import now_iso
from msp.http import caller_of, create_app, if_match_version, json_response, parse_body
from msp.reviewers.scope import ScopeAssignment, assign_departments
from msp.storage.reviewer_scopes import reviewer_scope_store

logger = Logger()
app = create_app()


@app.put("/v1/admin/reviewers/<reviewer_sub>/departments")
def assign(reviewer_sub: str):
    caller = caller_of(app)
    version = if_match_version(app)
    assignment = parse_body(app, ScopeAssignment)
    scope = assign_departments(reviewer_scope_store(), caller, reviewer_sub, assignment, version, now_iso())
    logger.info("reviewer scope changed", extra={"reviewer_sub": reviewer_sub, "version": scope.version})
    return json_response(200, scope.model_dump(mode="json"), {"ETag": f'"{scope.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
