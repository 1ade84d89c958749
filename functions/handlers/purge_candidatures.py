"""Scheduled job, weekly: erases the personal data and documents of candidatures past their retention, keeping an
anonymised skeleton. Stops before its timeout and goes on in a new invocation from where it stopped."""

from aws_lambda_powertools import Logger

from msp.candidatures.retention import RetentionPolicy, purge_expired
from msp.clock import utc_now
from msp.config import settings
from msp.storage.documents import document_bucket
from msp.storage.messaging import invoke_async
from msp.storage.retention import retention_store

logger = Logger()
# Time kept for one more candidature's purge and the hand-over to the next invocation.
MARGIN_MS = 60_000


@logger.inject_lambda_context
def handler(event, context):
    config = settings()
    policy = RetentionPolicy(
        draft_days=config.draft_retention_days,
        withdrawn_days=config.withdrawn_retention_days,
        rejected_days=config.rejected_retention_days,
        deconventioned_days=config.deconventioned_retention_days,
    )
    start = (event or {}).get("resume_from")
    report = purge_expired(
        retention_store(),
        document_bucket(),
        policy,
        utc_now(),
        start=start if isinstance(start, str) else None,
        time_left=lambda: context.get_remaining_time_in_millis() > MARGIN_MS,
    )
    logger.info("purge", extra=report.model_dump(exclude={"purged"}) | {"purged": len(report.purged)})
    if not report.complete and config.function_name:
        invoke_async(config.function_name, {"resume_from": report.resume_from})
    return report.model_dump(mode="json")
