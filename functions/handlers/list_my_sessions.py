"""GET /v1/sessions?year=&month=&cursor=: the caller's declared sessions of a month, by date."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.http import caller_of, create_app, json_response, parse_query
from msp.sessions.statements import SessionsQuery, list_sessions
from msp.storage.secrets import patient_keyring, queue_cursor_keys
from msp.storage.sessions import session_store

logger = Logger()
app = create_app()


@app.get("/v1/sessions")
def sessions():
    query = parse_query(app, SessionsQuery)
    page = list_sessions(session_store(), patient_keyring(), caller_of(app), query, queue_cursor_keys())
    return json_response(200, page.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
