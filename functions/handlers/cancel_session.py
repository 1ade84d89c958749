"""DELETE /v1/sessions/{session_id}: the declaring psychologist cancels a session of a year still open."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.headers import SECURITY_HEADERS
from msp.http import caller_of, create_app, require_empty_body
from msp.sessions.declarations import cancel_session
from msp.storage.access_journal import access_journal_store
from msp.storage.sessions import session_store

logger = Logger()
app = create_app()


@app.delete("/v1/sessions/<session_id>")
def cancel(session_id: str):
    require_empty_body(app)
    cancel_session(session_store(), access_journal_store(), caller_of(app), session_id, programme_today())
    return Response(status_code=204, headers=SECURITY_HEADERS)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
