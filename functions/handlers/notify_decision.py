"""EventBridge target: e-mails the psychologist about a submission or a review decision, and the reviewers about a
resignation (once per event)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from pydantic import ValidationError

from msp.candidatures.models import DecisionEvent
from msp.candidatures.notifications import notify_decision
from msp.config import settings
from msp.storage.candidatures import candidature_store
from msp.storage.messaging import mailer

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context):
    try:
        decision = DecisionEvent.model_validate(event.detail)
    except ValidationError:
        logger.warning("dropped a malformed decision event", extra={"detail_type": event.detail_type})
        return {"sent": False}
    sent = notify_decision(candidature_store(), mailer(), decision, settings().reviewers_mail)
    logger.info("decision notified", extra={"candidature_id": decision.candidature_id, "sent": sent})
    return {"sent": sent}
