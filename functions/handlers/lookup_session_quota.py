"""POST /v1/sessions/quota: a patient's sessions used and remaining in a year, the NIR in the JSON body (never
in a URL, where edge logs, proxies and browser history would keep it); journaled and limited per day."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.http import caller_of, create_app, json_response, parse_body
from msp.sessions.declarations import patient_quota
from msp.sessions.rules import QuotaQuery
from msp.storage.access_journal import access_journal_store
from msp.storage.secrets import patient_keyring
from msp.storage.sessions import session_store

logger = Logger()
app = create_app()


@app.post("/v1/sessions/quota")
def quota():
    query = parse_body(app, QuotaQuery)
    status = patient_quota(
        session_store(), access_journal_store(), patient_keyring(), caller_of(app), query, programme_today()
    )
    return json_response(200, status.model_dump(mode="json"))


# The body holds a NIR: never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event, context):
    return app.resolve(event, context)
