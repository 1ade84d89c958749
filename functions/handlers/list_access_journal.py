"""GET /v1/admin/psychologists/{psychologist_sub}/access-journal?limit=&cursor=: a psychologist's quota look-ups,
declarations and cancellations, newest first (admins)."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from msp.http import caller_of, create_app, json_response, parse_query
from msp.sessions.journal import JournalQuery, journal_of
from msp.storage.access_journal import access_journal_store

logger = Logger()
app = create_app()


@app.get("/v1/admin/psychologists/<psychologist_sub>/access-journal")
def journal(psychologist_sub: str):
    page = journal_of(access_journal_store(), caller_of(app), psychologist_sub, parse_query(app, JournalQuery))
    return json_response(200, page.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
