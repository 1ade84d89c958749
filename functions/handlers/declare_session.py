"""POST /v1/sessions: declare a session against the patient's annual quota (Idempotency-Key)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.http import caller_of, create_app, idempotency_key, json_response, parse_body
from msp.metrics import BusinessMetrics
from msp.sessions.declarations import declare_session
from msp.sessions.rules import SessionDeclaration, session_id_for
from msp.storage.access_journal import access_journal_store
from msp.storage.secrets import patient_keyring
from msp.storage.sessions import session_store

logger = Logger()
metrics = BusinessMetrics(service="declare-session")
app = create_app()


@app.post("/v1/sessions")
def declare():
    caller = caller_of(app)
    declaration = parse_body(app, SessionDeclaration)
    # No separate idempotency record: the session id follows from (caller, key), and the session item written
    # in the declaration's transaction is the record. A retry (after a lost answer, a crash or a 503) finds it
    # and gets the answer stored with it; another body under the same key gets 422 idempotency_key_reused.
    session_id = session_id_for(caller.sub, idempotency_key(app))
    today = programme_today()
    answer = declare_session(
        session_store(), access_journal_store(), patient_keyring(), metrics, caller, declaration, today, session_id
    )
    return json_response(201, answer.model_dump(mode="json"))


# The body holds a NIR: never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event, context):
    return app.resolve(event, context)
