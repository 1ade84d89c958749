"""POST /v1/convention/resign: a conventioned psychologist leaves the programme from an effective date."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.leaving import ResignationRequest, resign
from msp.clock import programme_today
from msp.http import caller_of, create_app, json_response, parse_body
from msp.storage.candidatures import candidature_store
from msp.storage.messaging import decision_publisher

logger = Logger()
app = create_app()


@app.post("/v1/convention/resign")
def resign_convention():
    caller = caller_of(app)
    request = parse_body(app, ResignationRequest)
    candidature = resign(candidature_store(), decision_publisher(), caller, request, programme_today())
    logger.info("resignation", extra={"candidature_id": candidature.id, "status": candidature.status.value})
    return json_response(200, candidature.public(), {"ETag": f'"{candidature.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
