"""GET /v1/me/export: everything the service holds about the caller, as one JSON document (RGPD access)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.candidatures.personal_data import export_personal_data
from msp.clock import now_iso
from msp.http import caller_of, create_app, json_response
from msp.storage.candidatures import candidature_store
from msp.storage.documents import document_bucket
from msp.storage.secrets import patient_keyring
from msp.storage.sessions import session_store

logger = Logger()
app = create_app()


@app.get("/v1/me/export")
def export():
    caller = caller_of(app)
    document = export_personal_data(
        candidature_store(), document_bucket(), session_store(), patient_keyring(), caller, now_iso()
    )
    logger.info("personal data exported", extra={"candidatures": len(document.candidatures)})
    return json_response(
        200, document.model_dump(mode="json"), {"Content-Disposition": 'attachment; filename="mes-donnees.json"'}
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
