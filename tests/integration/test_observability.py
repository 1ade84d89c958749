"""What an operator reads, on the local stack: each business event of a scenario is one metric line (CloudWatch
embedded metric format) in the functions' output, with the event's closed-set dimensions and no identifier; each
API request is one access log line, whose request id the caller got (apigw-requestid) and the function logged as
its correlation_id.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest

from infra.api_client import SAMPLE_PDF
from infra.template import load_template
from msp.clock import programme_today

pytestmark = pytest.mark.integration

TEMPLATE = load_template()
NAMESPACE = TEMPLATE.parameters["MetricsNamespace"]["Default"]
ROUTE_KEYS = {route.route_key for route in TEMPLATE.routes}
REFERRAL = {"prescriber_rpps": "10000000009", "date": "2023-02-01"}  # 2023 sessions need one
QUOTA_2023 = 8


def metric(service: str, values: dict[str, float], **dimensions: str) -> dict:
    """A metric line as CloudWatch reads it, its timestamp aside."""
    return {
        "_aws": {
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[*dimensions, "service"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ]
        },
        **dimensions,
        "service": service,
        **{name: [float(value)] for name, value in values.items()},
    }


class Output:
    """The functions' output since the last read: their metric lines (printed) and their log lines (Powertools)."""

    def __init__(self, capsys, logged: io.StringIO):
        self.capsys, self.logged, self.read_up_to = capsys, logged, 0
        self.printed: list[str] = []

    def metrics(self) -> list[dict]:
        lines = [line for line in self.capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
        self.printed.extend(lines)
        found = [json.loads(line) for line in lines]
        for line in found:
            assert isinstance(line["_aws"].pop("Timestamp"), int)
        return found

    def logs(self) -> list[dict]:
        text = self.logged.getvalue()
        lines, self.read_up_to = text[self.read_up_to :].splitlines(), len(text)
        return [json.loads(line) for line in lines]


@pytest.fixture
def output(stack, capsys, function_log):
    # Uploads and decisions of earlier tests are delivered first: their lines are not this scenario's.
    stack.notifier.deliver_pending()
    stack.events.wait_idle()
    capsys.readouterr()
    return Output(capsys, function_log)


@pytest.fixture
def answers(api):
    """Every answer of the API during the test, by its apigw-requestid."""
    seen: dict[str, object] = {}

    def keep(response, *args, **kwargs):
        seen[response.headers["apigw-requestid"]] = response

    api.session.hooks["response"].append(keep)
    yield seen
    api.session.hooks["response"].remove(keep)


def _verified(api, stack, token, candidature_id, kind, content=SAMPLE_PDF) -> str:
    upload = api.upload_document(token, candidature_id, kind, content)
    assert upload["upload_status"] == 204, upload["upload_body"]
    stack.notifier.deliver_pending()
    return api.wait_document(token, candidature_id, upload["document_id"])["status"]


def test_each_business_event_is_one_metric_line_and_each_request_one_access_log_line(
    api, stack, output, answers, psychologist, unique_fields, conventioned, new_patient, on_day
):
    access_log = stack.access_log
    logged_before = access_log.stat().st_size if access_log.exists() else 0
    sub, token = psychologist
    fields, key = unique_fields(), str(uuid.uuid4())

    created = api.create_candidature(token, fields, key)
    assert created.status_code == 201, created.text
    assert api.create_candidature(token, fields, key).json() == created.json()  # a replay creates nothing
    candidature_id = created.json()["id"]
    assert output.metrics() == [metric("create-candidature", {"CandidaturesCreated": 1})]

    assert _verified(api, stack, token, candidature_id, "diploma", b"MZ\x90\x00 not a PDF") == "rejected"
    for kind in ("diploma", "identity", "identifier_proof"):
        assert _verified(api, stack, token, candidature_id, kind) == "verified"
    checked = [metric("verify-document-upload", {"DocumentsChecked": 1}, outcome="rejected")]
    checked += [metric("verify-document-upload", {"DocumentsChecked": 1}, outcome="verified")] * 3
    assert output.metrics() == checked

    submitted = api.call("POST", f"/v1/candidatures/{candidature_id}/submit", token=token)
    assert submitted.status_code == 200, submitted.text
    assert output.metrics() == [metric("submit-candidature", {"CandidaturesSubmitted": 1})]

    admin, path, version = (
        api.token("admin"),
        f"/v1/candidatures/{candidature_id}/transitions",
        submitted.json()["version"],
    )
    transitions = []
    for action in ("start_review", "accept"):
        decided = api.call("POST", path, token=admin, json={"action": action, "expected_version": version})
        assert decided.status_code == 200, decided.text
        transitions.append(decided.headers["apigw-requestid"])
        version = decided.json()["version"]
    stack.events.wait_idle()  # the decision's e-mail, sent by its own function, counts nothing
    assert output.metrics() == [metric("transition-candidature", {"Decisions": 1}, outcome="accept")]
    # Each function line carries its request's id: the one the caller got, and the access log's.
    assert [line["correlation_id"] for line in output.logs() if line["message"] == "transition"] == transitions

    practice = fields["practices"][0]
    search = {"lat": practice["lat"], "lon": practice["lon"], "radius_km": 5, "name": fields["last_name"]}
    found = api.call("GET", "/v1/psychologists/search", params=search)
    assert found.status_code == 200, found.text
    results = len(found.json()["results"])
    assert output.metrics() == [metric("search-psychologists", {"Searches": 1, "SearchResults": results})]

    _, declarer = conventioned()
    patient, session_key = new_patient(), str(uuid.uuid4())
    today = {"patient": patient, "date": programme_today().isoformat()}
    first = api.declare_session(declarer, today, session_key)
    assert first.status_code == 201, first.text
    assert api.declare_session(declarer, today, session_key).json() == first.json()  # a replay declares nothing
    assert api.declare_session(declarer, today | {"situation": "css"}).status_code == 201
    assert output.metrics() == [
        metric("declare-session", {"SessionsDeclared": 1}, kind="assessment", situation="common"),
        metric("declare-session", {"SessionsDeclared": 1}, kind="follow_up", situation="css"),
    ]

    on_day(dt.date(2023, 3, 10))
    in_2023 = new_patient()
    for day in range(1, QUOTA_2023 + 2):
        body = {"patient": in_2023, "date": f"2023-03-{day:02d}", "referral": REFERRAL, "situation": "ame"}
        refused = api.declare_session(declarer, body)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "quota_exhausted"
    declared = metric("declare-session", {"SessionsDeclared": 1}, kind="follow_up", situation="ame")
    assert output.metrics() == [
        metric("declare-session", {"SessionsDeclared": 1}, kind="assessment", situation="ame"),
        *[declared] * (QUOTA_2023 - 1),
        metric("declare-session", {"QuotaRefusals": 1}),
    ]
    (refusal,) = [line for line in output.logs() if line.get("code") == "quota_exhausted"]
    assert refusal["correlation_id"] == refused.headers["apigw-requestid"]

    # Not one identifier in a metric line: no candidature id, sub, name, NIR nor request id.
    printed = "\n".join(output.printed)
    for identifier in (candidature_id, sub, fields["last_name"], patient["nir"], in_2023["nir"], *answers):
        assert identifier not in printed

    # One access log line per API request (the uploads go to the S3 server, not the API), with its answer's id.
    with access_log.open(encoding="utf-8") as handle:
        handle.seek(logged_before)
        lines = [json.loads(line) for line in handle.read().splitlines()]
    assert sorted(line["requestId"] for line in lines) == sorted(answers)
    for line in lines:
        response = answers[line["requestId"]]
        assert (line["method"], line["status"]) == (response.request.method, str(response.status_code))
        assert line["route"] in ROUTE_KEYS  # the route's template: never an id or a query string
    text = "".join(json.dumps(line) for line in lines)
    for secret in (patient["nir"], in_2023["nir"], fields["last_name"], token):
        assert secret not in text
