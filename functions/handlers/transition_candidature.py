"""POST /v1/candidatures/{candidature_id}/transitions: a reviewer's action at an expected version."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.review import DECISIONS, TransitionRequest, transition_candidature
from msp.http import caller_of, create_app, json_response, parse_body
from msp.metrics import BusinessMetrics
from msp.storage.candidatures import candidature_store
from msp.storage.messaging import decision_publisher

logger = Logger()
metrics = BusinessMetrics(service="transition-candidature")
app = create_app()


@app.post("/v1/candidatures/<candidature_id>/transitions")
def transition(candidature_id: str):
    caller = caller_of(app)
    request = parse_body(app, TransitionRequest)
    candidature = transition_candidature(candidature_store(), decision_publisher(), caller, candidature_id, request)
    logger.info("transition", extra={"candidature_id": candidature_id, "action": request.action.value})
    if request.action in DECISIONS:
        metrics.decision_taken(request.action)
    return json_response(200, candidature.public(), {"ETag": f'"{candidature.version}"'})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
