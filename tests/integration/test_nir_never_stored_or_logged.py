"""The NIR never reaches a stored item or a log line.

Sessions are declared, refused, looked up and cancelled through the gateway with every log captured at
DEBUG (the functions' Powertools logger, their metric lines, AWS SDK, Powertools internals, the gateway and its
access log, the storage servers' own log files), even with POWERTOOLS_LOGGER_LOG_EVENT=true; then every item of
every table of the local stack, the idempotency table included, and every captured line are searched for the NIRs.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import logging
import uuid

import boto3
import pytest

from msp.clock import programme_today
from tests.conftest import nir_for, set_convention

pytestmark = pytest.mark.integration

SESSION_FUNCTIONS = {
    "DeclareSessionFunction": "handlers.declare_session",
    "LookupSessionQuotaFunction": "handlers.lookup_session_quota",
    "CancelSessionFunction": "handlers.cancel_session",
}
# The test's own HTTP client logs the URLs it requests: that is the caller's log, not the backend's.
CLIENT_LOGGERS = ("urllib3", "requests")


def _forms(nir: str) -> set[str]:
    """How a NIR could show up: whole, without its key, grouped as on the card; compared in lowercase."""
    grouped = " ".join([nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]])
    return {nir.lower(), nir[:13].lower(), grouped.lower()}


@pytest.fixture
def every_log(stack, caplog, capsys, monkeypatch):
    """Everything logged while the test runs, by source, as lowercase text."""

    # Handlers read POWERTOOLS_LOGGER_LOG_EVENT when they are imported: (re)load them with it on.
    def load_session_handlers() -> None:
        for logical_id, module in SESSION_FUNCTIONS.items():
            importlib.reload(importlib.import_module(module))
            stack.runtime._handlers.pop(logical_id, None)

    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    load_session_handlers()
    caplog.set_level(logging.DEBUG)
    service = logging.getLogger("mon-soutien-psy")  # the functions' Powertools logger
    printed = io.StringIO()
    streams = [(handler, handler.setStream(printed)) for handler in service.handlers if hasattr(handler, "setStream")]
    assert streams, "the functions' Powertools logger has no stream to capture"
    level = service.level
    service.setLevel(logging.DEBUG)
    stack.access_log.parent.mkdir(parents=True, exist_ok=True)
    stack.access_log.touch()
    files = sorted(stack.workdir.rglob("*.log"))
    offsets = {path: path.stat().st_size for path in files}
    capsys.readouterr()

    def collected() -> dict[str, str]:
        records = [record for record in caplog.records if not record.name.startswith(CLIENT_LOGGERS)]
        lines = [f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''} {r.__dict__!r}" for r in records]
        written = []
        for path in files:
            with path.open("rb") as handle:
                handle.seek(offsets[path])
                written.append(handle.read().decode(errors="replace"))
        return {
            "log records": "\n".join(lines).lower(),
            "functions' output": printed.getvalue().lower(),
            "functions' printed lines (metrics)": capsys.readouterr().out.lower(),
            "servers' log files": "\n".join(written).lower(),
        }

    yield collected
    for handler, stream in streams:
        handler.setStream(stream)
    service.setLevel(level)
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    load_session_handlers()


def _every_item_of_every_table() -> str:
    client = boto3.client("dynamodb", region_name="eu-west-3")
    dumped = []
    for table in client.get_paginator("list_tables").paginate():
        for name in table["TableNames"]:
            for page in client.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
                dumped.extend(json.dumps(item, sort_keys=True) for item in page["Items"])
    assert dumped, "no item was found: the scan looked in the wrong place"
    return "\n".join(dumped).lower()


def test_no_nir_in_any_item_or_log_line(api, stack, on_day, conventioned, every_log):
    today = programme_today().isoformat()
    corsican = {"nir": nir_for(dt.date(1985, 5, 1), place="2A004", order="517"), "birth_date": "1985-05-01"}
    other = {"nir": nir_for(dt.date(1992, 11, 1), place="69123", order="084"), "birth_date": "1992-11-01"}
    sub, token = conventioned()
    _, stranger = conventioned()

    # Typed as on the card, in groups and lowercase: stored and logged in no form either.
    as_typed = {**corsican, "nir": " ".join(corsican["nir"][i : i + 3] for i in range(0, 15, 3)).lower()}
    sent = {"patient": as_typed, "date": today, "situation": "css"}
    key = str(uuid.uuid4())
    declared = api.declare_session(token, sent, key)
    assert declared.status_code == 201, declared.text
    assert api.declare_session(token, sent, key).json() == declared.json()  # replay
    other_body = {"patient": other, "date": today}
    assert api.declare_session(token, other_body, key).status_code == 422  # key reused for another patient
    refusals = [
        {**other_body, "patient": {**other, "birth_date": "1993-01-01"}},  # birth date against the NIR
        {**other_body, "patient": {**other, "nir": other["nir"][:-2] + "00"}},  # control key
        {**other_body, "patient": {**other, "nir": other["nir"] + "9"}},  # length
        {**other_body, "date": "2099-01-01"},
        {**other_body, "nir": other["nir"]},  # unknown field
        {"patient": other["nir"], "date": today},  # wrong type
    ]
    for body in refusals:
        assert api.declare_session(token, body).status_code == 422
    set_convention(sub, "deconventioned")
    assert api.declare_session(token, other_body).status_code == 403
    set_convention(sub, "accepted")
    for params in (
        {"nir": other["nir"], "birth_date": other["birth_date"]},
        {"nir": as_typed["nir"], "birth_date": corsican["birth_date"], "year": 2099},
        {"nir": other["nir"][:-2] + "00", "birth_date": other["birth_date"]},
    ):
        api.call("POST", "/v1/sessions/quota", token=token, json=params)
        api.call("POST", "/v1/sessions/quota", token=stranger, json=params)
        api.call("POST", "/v1/sessions/quota", json=params)  # no token: refused by the gateway
        api.call("GET", "/v1/sessions/quota", token=token, params=params)  # the route that took it in the URL
        api.call("GET", "/v1/sessions/unknown", token=token, params=params)  # no such route
    assert api.call("DELETE", f"/v1/sessions/{declared.json()['session_id']}", token=token).status_code == 204
    on_day(dt.date(2023, 3, 10))  # 2023 open again, as make run TODAY=2023-03-10
    referral = {"prescriber_rpps": "10000000009", "date": "2023-02-01"}
    for day in range(1, 10):  # 2023: 8 sessions, then quota_exhausted
        expected = 201 if day <= 8 else 409
        body = {**other_body, "date": f"2023-03-{day:02d}", "referral": referral}
        assert api.declare_session(token, body).status_code == expected

    stored, logs = _every_item_of_every_table(), every_log()
    assert "patient_key" in stored and "k1:" in stored, "the session items were not found"
    assert "post /v1/sessions/quota" in logs["log records"], "the gateway's log lines were not captured"
    assert "journal#" in stored, "the access journal was not found"
    assert "transactwriteitems" in logs["log records"], "the AWS SDK's log lines were not captured"
    assert "declaresessionfunction" in logs["functions' output"], "the functions' log lines were not captured"
    assert "quota_exhausted" in logs["functions' output"]
    assert '"sessionsdeclared"' in logs["functions' printed lines (metrics)"], "the metric lines were not captured"
    assert '"quotarefusals"' in logs["functions' printed lines (metrics)"]
    assert '"route":"post /v1/sessions/quota"' in logs["servers' log files"], "the access log was not captured"
    for patient in (corsican, other):
        for form in _forms(patient["nir"]):
            assert form not in stored, f"a NIR ({len(form)} characters) is stored"
            for source, text in logs.items():
                assert form not in text, f"a NIR ({len(form)} characters) is in the {source}"
