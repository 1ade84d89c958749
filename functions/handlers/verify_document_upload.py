"""S3 ObjectCreated on uploads/: check each uploaded document and record the verdict.

A record that is not an upload of a pending document is logged and dropped: raising would only make Lambda
invoke the function again with the same event. A storage outage does raise (StorageBusy), so Lambda retries the
event and the documents left pending are checked then.
"""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from msp.candidatures.use_cases import verify_uploaded_document
from msp.metrics import BusinessMetrics
from msp.storage.candidatures import candidature_store
from msp.storage.documents import document_bucket
from msp.storage.messaging import mailer

logger = Logger()
metrics = BusinessMetrics(service="verify-document-upload")


def _object_key(record: Any) -> str | None:
    """The object key of one S3 notification record, or None when the record is not shaped like one."""
    try:
        key = record["s3"]["object"]["key"]
    except (KeyError, TypeError, IndexError):
        return None
    return unquote_plus(key) if isinstance(key, str) and key else None


@logger.inject_lambda_context
def handler(event, context):
    outcome = {"verified": 0, "rejected": 0, "dropped": 0}
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        logger.warning("dropped an event that is not an S3 notification", extra={"event_type": type(event).__name__})
        outcome["dropped"] += 1
        return outcome
    for record in records:
        key = _object_key(record)
        if key is None:
            logger.warning("dropped a malformed S3 record")
            outcome["dropped"] += 1
            continue
        status = verify_uploaded_document(candidature_store(), document_bucket(), metrics, key, mailer())
        if status is None:
            logger.warning("dropped an S3 record for no pending document", extra={"key": key})
            outcome["dropped"] += 1
            continue
        logger.info("document checked", extra={"key": key, "status": status.value})
        if status.value in outcome:
            outcome[status.value] += 1
    return outcome
