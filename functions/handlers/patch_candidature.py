"""PATCH /v1/candidatures/{candidature_id}: edit one's own draft under If-Match."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.models import CandidatureFields
from msp.candidatures.use_cases import patch_candidature
from msp.http import caller_of, create_app, if_match_version, json_response, parse_body
from msp.storage.candidatures import candidature_store

logger = Logger()
app = create_app()


@app.patch("/v1/candidatures/<candidature_id>")
def patch(candidature_id: str):
    caller = caller_of(app)
    version = if_match_version(app)
    changes = parse_body(app, CandidatureFields)
    candidature = patch_candidature(candidature_store(), caller, candidature_id, changes, version)
    return json_response(200, candidature.public(), {"ETag": f'"{candidature.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
