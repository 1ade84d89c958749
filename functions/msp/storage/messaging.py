"""Messages that leave the service: decision events on EventBridge, e-mails through SES, and a job's next
invocation of itself."""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

from msp.config import settings
from msp.storage.aws import BOTO_CONFIG, aws_errors

if TYPE_CHECKING:
    from msp.candidatures.models import DecisionEvent, EmailMessage

# A child of the function's Powertools logger: its lines are the function's JSON lines, correlation id included.
logger = Logger(child=True)

DECISION_SOURCE = "msp.review"
DECISION_DETAIL_TYPE = "CandidatureDecision"


@cache
def events_client():
    return boto3.client("events", region_name=settings().region, config=BOTO_CONFIG)


@cache
def ses_client():
    return boto3.client("sesv2", region_name=settings().region, config=BOTO_CONFIG)


class DecisionPublisher:
    """Puts decision events on the EventBridge bus (locally: the stack's in-process bus)."""

    def __init__(self, bus: str):
        self.bus = bus

    def publish(self, event: DecisionEvent) -> bool:
        """True when the bus took the event. A failure is logged, never raised: the decision
        is already written, and the audit trail keeps it."""
        entry = {
            "Source": DECISION_SOURCE,
            "DetailType": DECISION_DETAIL_TYPE,
            "Detail": event.model_dump_json(),
            "EventBusName": self.bus,
        }
        try:
            with aws_errors():
                response = events_client().put_events(Entries=[entry])
        except Exception:
            logger.exception("decision event not published", extra={"candidature_id": event.candidature_id})
            return False
        if response.get("FailedEntryCount"):
            refusals = [
                {"code": entry["ErrorCode"], "message": entry.get("ErrorMessage")}
                for entry in response["Entries"]
                if "ErrorCode" in entry
            ]
            logger.error(
                "decision event refused by the bus",
                extra={"candidature_id": event.candidature_id, "refusals": refusals},
            )
            return False
        return True


class SesMailer:
    def __init__(self, sender: str):
        self.sender = sender

    def send(self, message: EmailMessage) -> None:
        with aws_errors():
            ses_client().send_email(
                FromEmailAddress=self.sender,
                Destination={"ToAddresses": [message.to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                        # Ties a message to what caused it (candidature and version), in SES's logs too.
                        "Headers": [{"Name": "X-Reference", "Value": message.reference}],
                    }
                },
            )


def invoke_async(function_name: str, payload: dict[str, Any]) -> None:
    """Start another invocation of a function (a job continuing in a fresh one), without waiting for it."""
    client = boto3.client("lambda", region_name=settings().region, config=BOTO_CONFIG)
    with aws_errors():
        client.invoke(FunctionName=function_name, InvocationType="Event", Payload=json.dumps(payload).encode())


# ---------------------------------------------------------------- the patient key's secret


@cache
def decision_publisher() -> DecisionPublisher:
    return DecisionPublisher(settings().event_bus)


@cache
def mailer() -> SesMailer:
    return SesMailer(settings().mail_from)
