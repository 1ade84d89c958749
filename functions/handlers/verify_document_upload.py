"""S3 ObjectCreated on uploads/: check each uploaded document and record the verdict."""

from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from msp.candidatures import verify_uploaded_document
from msp.storage import candidature_store, document_bucket

logger = Logger()


def _object_keys(event: dict) -> list[str]:
    keys = []
    for record in event.get("Records") or []:
        try:
            keys.append(unquote_plus(record["s3"]["object"]["key"]))
        except (KeyError, TypeError):
            logger.warning("dropped a malformed S3 record")
    return keys


@logger.inject_lambda_context
def handler(event, context):
    if not isinstance(event, dict):
        logger.warning("dropped an event that is not an S3 notification")
        return {"verified": 0, "rejected": 0}
    outcome = {"verified": 0, "rejected": 0}
    for key in _object_keys(event):
        status = verify_uploaded_document(candidature_store(), document_bucket(), key)
        logger.info("document checked", extra={"key": key, "status": status})
        if status is not None and status.value in outcome:
            outcome[status.value] += 1
    return outcome
