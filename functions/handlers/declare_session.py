"""POST /v1/sessions: declare a session against the patient's annual quota (Idempotency-Key)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.clock import programme_today
from msp.declarations import declare_session
from msp.http import caller_of, create_app, header, json_response, parse_body
from msp.idempotency import once_per_key
from msp.sessions import SessionDeclaration, idempotency_fingerprint, session_id_for
from msp.storage import patient_keyring, session_store

logger = Logger()
app = create_app()


@app.post("/v1/sessions")
def declare():
    caller = caller_of(app)
    declaration = parse_body(app, SessionDeclaration)
    keyring = patient_keyring()
    patient = keyring.patient_key(declaration.patient.nir, declaration.date.year)
    key = header(app, "Idempotency-Key")

    def compute() -> dict:
        # Runs once the key is checked. The session id follows from the key, so should this run again after a
        # crash left the idempotency record unfinished, it finds its session instead of counting a second one.
        session_id = session_id_for(caller.sub, key)
        answer = declare_session(session_store(), keyring, caller, declaration, programme_today(), session_id)
        return answer.model_dump(mode="json")

    answer = once_per_key(
        "declare_session",
        caller,
        key,
        payload=idempotency_fingerprint(declaration, patient),
        compute=compute,
        lambda_context=app.lambda_context,
    )
    return json_response(201, answer)


# The body holds a NIR: never log the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def handler(event, context):
    return app.resolve(event, context)
