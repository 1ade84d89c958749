"""POST /v1/sessions: declare a session against the patient's annual quota (Idempotency-Key)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.declarations import declare_session
from msp.http import caller_of, create_app, header, json_response, parse_body
from msp.idempotency import once_per_key
from msp.sessions import SessionDeclaration, idempotency_fingerprint
from msp.storage import patient_keyring, session_store

logger = Logger()
app = create_app()


@app.post("/v1/sessions")
def declare():
    caller = caller_of(app)
    declaration = parse_body(app, SessionDeclaration)
    keyring = patient_keyring()
    fingerprint = idempotency_fingerprint(
        declaration, keyring.patient_key(declaration.patient.nir, declaration.date.year)
    )
    answer = once_per_key(
        "declare_session",
        caller,
        header(app, "Idempotency-Key"),
        payload=fingerprint,
        compute=lambda: declare_session(session_store(), keyring, caller, declaration, programme_today()).model_dump(
            mode="json"
        ),
        lambda_context=app.lambda_context,
    )
    return json_response(201, answer)


# The body holds a NIR: never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event, context):
    return app.resolve(event, context)
