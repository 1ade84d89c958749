"""GET /v1/sessions/statement?year=&month=: the month's totals per payer, as JSON or (Accept: text/csv) CSV."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from msp.headers import SECURITY_HEADERS
from msp.http import caller_of, create_app, header, json_response, parse_query
from msp.sessions.statements import MonthQuery, month_statement, statement_csv
from msp.storage.sessions import session_store

logger = Logger()
app = create_app()


@app.get("/v1/sessions/statement")
def statement():
    query = parse_query(app, MonthQuery)
    totals = month_statement(session_store(), caller_of(app), query)
    if "text/csv" in (header(app, "Accept") or ""):
        filename = f"releve-{query.year}-{query.month:02d}.csv"
        return Response(
            status_code=200,
            content_type="text/csv; charset=utf-8",
            body=statement_csv(totals),
            headers=SECURITY_HEADERS | {"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return json_response(200, totals.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event, context):
    return app.resolve(event, context)
