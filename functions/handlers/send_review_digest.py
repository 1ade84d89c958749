"""Scheduled job, every morning: e-mails the reviewers the candidatures submitted the day before, by department."""

import datetime as dt

from aws_lambda_powertools import Logger

from msp.candidatures.notifications import send_daily_digest
from msp.clock import programme_today
from msp.config import settings
from msp.storage.messaging import mailer
from msp.storage.review_queue import digest_store

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    day = programme_today() - dt.timedelta(days=1)
    listed = send_daily_digest(digest_store(), mailer(), day, settings().reviewers_mail)
    logger.info("review digest", extra={"day": day.isoformat(), "candidatures": listed})
    return {"day": day.isoformat(), "candidatures": listed}
