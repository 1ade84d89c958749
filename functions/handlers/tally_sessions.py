"""Scheduled job: the yearly tally of sessions. Nightly for the current year; the day after the past year's
closing date (policy data), its final tally. Stops before the timeout with its checkpoints saved and goes on in
a new invocation."""

from aws_lambda_powertools import Logger

from msp.clock import programme_today, utc_now
from msp.config import settings
from msp.metrics import BusinessMetrics
from msp.storage.messaging import invoke_async
from msp.storage.reports import report_store
from msp.storage.session_years import session_year_store
from msp.tally.job import TallyEvent, continuation_event, run_tally

logger = Logger()
metrics = BusinessMetrics(service="tally-sessions")


@logger.inject_lambda_context
def handler(event, context):
    request = TallyEvent.model_validate(event or {})
    outcome = run_tally(
        session_year_store(),
        report_store(),
        request,
        today=programme_today(),
        now=utc_now,
        remaining_ms=context.get_remaining_time_in_millis,
        log=logger,
        metrics=metrics,
    )
    follow_up = continuation_event(request, outcome)
    function_name = settings().function_name
    if follow_up is not None and function_name:
        invoke_async(function_name, follow_up)
        logger.info("tally continues in a new invocation", extra={"continuation": follow_up["continuation"]})
    elif outcome.status == "incomplete":
        logger.warning("tally incomplete: invoke again with its run_id to resume", extra={"run_id": outcome.run_id})
    return outcome.model_dump(mode="json")
