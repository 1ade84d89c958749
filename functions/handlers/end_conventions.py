"""Scheduled job, daily just after midnight (Paris): carries out the ends of convention due by today."""

from aws_lambda_powertools import Logger

from msp.candidatures.leaving import end_due_conventions
from msp.clock import programme_today
from msp.storage.candidatures import candidature_store

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    ended = end_due_conventions(candidature_store(), programme_today())
    logger.info("conventions ended", extra={"count": len(ended)})
    return {"ended": ended}
