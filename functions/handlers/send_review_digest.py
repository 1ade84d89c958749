"""Scheduled job, every morning: e-mails the reviewers the candidatures submitted the day before, by department."""

import datetime as dt

from aws_lambda_powertools import Logger

from msp.candidatures.notifications import send_daily_digest
from msp.clock import programme_today
from msp.config import settings
from msp.storage.messaging import mailer
from msp.storage.review_queue import digest_store

logger = Logger()


def digest_day(event: dict | None) -> dt.date:
    """The day before the one the schedule fired on (its time is in the event): a run retried or redriven later
    covers the same day as the first; without it (a run by hand), the day before today."""
    scheduled = (event or {}).get("scheduled_time")
    today = programme_today(dt.datetime.fromisoformat(scheduled)) if isinstance(scheduled, str) else programme_today()
    return today - dt.timedelta(days=1)


@logger.inject_lambda_context
def handler(event, context):
    day = digest_day(event)
    listed = send_daily_digest(digest_store(), mailer(), day, settings().reviewers_mail)
    logger.info("review digest", extra={"day": day.isoformat(), "candidatures": listed})
    return {"day": day.isoformat(), "candidatures": listed}
