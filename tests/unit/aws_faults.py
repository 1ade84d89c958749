"""Fault injection for the fault tests: the template's tables and bucket on moto, failures answered from inside
botocore, handlers called with API Gateway events, and a snapshot of everything stored.

A failure is answered at botocore's `before-send` event, where the request would leave for the network: the
answer then goes through botocore's parser and its retry handler exactly like a real one, so a throttled call
is retried by the standard retry mode before our code sees it.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws
from moto.core.models import botocore_stubber

from infra.gateway import build_event
from infra.lambda_runtime import LambdaContext
from infra.provision import table_definition
from infra.seed import demo_fields, rpps_with_key
from infra.template import load_template
from msp.auth import DEPARTMENTS_CLAIM
from tests.stored_candidatures import store_candidature

REGION = "eu-west-3"
TABLES = {
    "AppTable": "msp-unit-app",
    "SessionsTable": "msp-unit-sessions",
    "IdempotencyTable": "msp-unit-idempotency",
    "DirectoryTable": "msp-unit-directory",
    "AccessJournalTable": "msp-unit-journal",
}
BUCKET = "msp-unit-documents"
EVENT_BUS = "msp-unit-decisions"
PATIENT_KEY_DOCUMENT = json.dumps({"key_id": "k1", "secret": "f" * 64})

Failure = Callable[[Any], AWSResponse]
_MODELS = botocore.loaders.create_loader()


class _Body:
    def __init__(self, content: bytes):
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


def dynamodb_error(code: str, message: str = "injected", status: int = 400, **fields: Any) -> Failure:
    """DynamoDB's JSON error answer (e.g. ProvisionedThroughputExceededException, ThrottlingException)."""

    def answer(request) -> AWSResponse:
        body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **fields}
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
        return AWSResponse(request.url, status, headers, _Body(json.dumps(body).encode()))

    return answer


def transaction_cancelled(code: str) -> Failure:
    """TransactionCanceledException with `code` for the first item and None for the others, as DynamoDB
    reports a conflict (TransactionConflict) or throttling inside a transaction (ThrottlingError)."""

    def answer(request) -> AWSResponse:
        items = json.loads(request.body)["TransactItems"]
        reasons = [{"Code": code, "Message": "injected"}] + [{"Code": "None"}] * (len(items) - 1)
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{code}]"
        return dynamodb_error("TransactionCanceledException", message, CancellationReasons=reasons)(request)

    return answer


def s3_error(code: str, status: int) -> Failure:
    """S3's XML error answer (e.g. 503 SlowDown, 500 InternalError)."""

    def answer(request) -> AWSResponse:
        body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>injected</Message></Error>'
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Body(body.encode()))

    return answer


def bare_status(status: int) -> Failure:
    """An error status without a body, as S3 answers a HEAD or a proxy answers in front of it."""

    def answer(request) -> AWSResponse:
        return AWSResponse(request.url, status, {}, _Body(b""))

    return answer


def unreachable(request) -> AWSResponse:
    """The endpoint refuses connections."""
    raise EndpointConnectionError(endpoint_url=request.url)


@dataclass
class _Rule:
    operation: str
    failure: Failure
    remaining: int | None  # None: every attempt


@dataclass
class Faults:
    """Fails chosen operations of the clients it watches, and counts every attempt that reaches the wire."""

    attempts: Counter = field(default_factory=Counter)
    rules: list[_Rule] = field(default_factory=list)

    def watch(self, client) -> None:
        """Put this between the client and moto: moto's handler answers every request of every client
        (botocore calls all `before-send` handlers, whichever answered first), so a request answered with a
        failure here must not reach it, or moto would apply a write the client is told failed."""
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register_first(f"before-send.{service}", self._before_send)

    def fail(self, operation: str, failure: Failure, *, times: int | None = None) -> None:
        self.rules.append(_Rule(operation, failure, times))

    def clear(self) -> None:
        self.rules.clear()
        self.attempts.clear()

    def clear_attempts(self) -> None:
        self.attempts.clear()

    def _before_send(self, request, event_name: str, **kwargs: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        self.attempts[operation] += 1
        for rule in self.rules:
            if rule.operation == operation and rule.remaining != 0:
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.failure(request)
        return botocore_stubber(event_name, request, **kwargs)


@dataclass
class Pauses:
    """Every time.sleep during a test, by the module that slept: botocore's retries and ours, without waiting."""

    seen: list[tuple[str, float]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.seen.append((sys._getframe(1).f_globals.get("__name__", "?"), seconds))

    def of(self, module: str) -> list[float]:
        return [seconds for name, seconds in self.seen if name == module]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class World:
    """The storage module on moto, with every client it uses watched by one Faults."""

    def __init__(self, faults: Faults, pauses: Pauses):
        from tests.storage_view import StorageView

        storage = StorageView()

        self.storage = storage
        self.faults = faults
        self.pauses = pauses
        self.template = load_template()
        self.plain_dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.plain_s3 = boto3.client("s3", region_name=REGION)

    def call(
        self,
        method: str,
        path: str,
        claims: dict[str, Any],
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Invoke the route's handler as API Gateway would, with a verified token's claims."""
        import importlib

        for route in self.template.routes:
            found = route.pattern.match(path)
            if route.method == method and found:
                break
        else:
            raise AssertionError(f"no route for {method} {path}")
        all_headers = [("content-type", "application/json"), *(headers or {}).items()]
        raw = b"" if body is None else json.dumps(body).encode()
        event = build_event(route, method, path, "", all_headers, raw, found.groupdict(), claims, "127.0.0.1")
        function = self.template.functions[route.function]
        handler = getattr(importlib.import_module(function.module), function.entry_point)
        result = handler(event, LambdaContext(route.function, function.memory, function.timeout))
        answer_headers = {name.lower(): value for name, value in (result.get("headers") or {}).items()}
        return Answer(result["statusCode"], answer_headers, json.loads(result["body"]) if result.get("body") else None)

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke an event-driven function (S3 notifications) as the Lambda service would."""
        import importlib

        function = self.template.functions[logical_id]
        handler = getattr(importlib.import_module(function.module), function.entry_point)
        return handler(event, LambdaContext(logical_id, function.memory, function.timeout))

    def snapshot(self) -> dict[str, Any]:
        """Every item of every table and every object of the bucket, read with clients no fault touches."""
        state: dict[str, Any] = {}
        for name in TABLES.values():
            items = []
            for page in self.plain_dynamodb.get_paginator("scan").paginate(TableName=name):
                items.extend(page["Items"])
            state[name] = sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
        objects = {}
        for page in self.plain_s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for listed in page.get("Contents", []):
                objects[listed["Key"]] = self.plain_s3.get_object(Bucket=BUCKET, Key=listed["Key"])["Body"].read()
        state[BUCKET] = objects
        return state


@contextmanager
def moto_world(monkeypatch) -> Iterator[World]:
    """The template's tables, the documents bucket and the decision bus on moto; the storage module's clients
    (the idempotency layer uses its DynamoDB client) watched by one Faults; sleeps recorded, not waited.
    Needs `moto_env`."""
    monkeypatch.setenv("PATIENT_KEY_DEV_SECRET", PATIENT_KEY_DOCUMENT)
    # The functions' plain settings (Powertools' service name and log level): a handler module imported here
    # first keeps its logger for the whole test session, so it must be the logger the functions have.
    for name, value in load_template().functions["CreateCandidatureFunction"].environment.items():
        if name.startswith("POWERTOOLS_") and isinstance(value, str):
            monkeypatch.setenv(name, value)
    # A fresh default session (credentials resolved again), reading service models from a shared loader:
    # loading them again for every test would cost more than the test.
    session = botocore.session.get_session()
    session.register_component("data_loader", _MODELS)
    boto3.setup_default_session(botocore_session=session)
    pauses = Pauses()
    monkeypatch.setattr(time, "sleep", pauses.sleep)
    with mock_aws():
        template = load_template()
        client = boto3.client("dynamodb", region_name=REGION)
        for logical_id, name in TABLES.items():
            client.create_table(**table_definition(name, template.tables[logical_id]))
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        boto3.client("events", region_name=REGION).create_event_bus(Name=EVENT_BUS)
        from msp import idempotency
        from tests.storage_view import StorageView

        storage = StorageView()

        faults = Faults()
        assert idempotency._persistence().client is storage.dynamodb_client()
        for watched in (storage.dynamodb_client(), storage.s3_client(), storage.events_client()):
            faults.watch(watched)
        yield World(faults, pauses)


# ---------------------------------------------------------------- who calls, and what is stored beforehand


def psychologist(sub: str) -> dict[str, Any]:
    return {"sub": sub, "cognito:groups": ["psychologists"]}


def reviewer(departments: str = "75") -> dict[str, Any]:
    return {"sub": "reviewer-1", "cognito:groups": ["reviewers"], DEPARTMENTS_CLAIM: departments}


def new_fields(**overrides: Any) -> dict[str, Any]:
    """Complete candidature fields in Paris with a fresh (invented) RPPS number."""
    fields = demo_fields(0)
    fields["identifier"] = {"type": "rpps", "value": rpps_with_key(f"{uuid.uuid4().int % 10**10:010d}")}
    return fields | overrides


def stored_candidature(status: str, owner_sub: str, *, documents: str = "verified", **overrides: Any):
    """A candidature written straight through the storage module, with its three documents and its creation
    audit event (version 1)."""
    return store_candidature(
        new_fields(**overrides),
        owner_sub=owner_sub,
        status=status,
        document_status=documents,
        actor=owner_sub,
        role="psychologists",
        action="create",
    )


def conventioned(sub: str, department: str = "75") -> None:
    """What accepting a psychologist writes for the sessions to check."""
    from msp.clock import now_iso
    from msp.storage.conventions import record_convention

    record_convention(
        psychologist_sub=sub,
        status="accepted",
        candidature_id=str(uuid.uuid4()),
        psychologist_id=f"id-{sub}",
        department=department,
        updated_at=now_iso(),
        start_date="2022-04-05",
    )


def declaration_body(nir: str, birth_date: dt.date, day: dt.date) -> dict[str, Any]:
    return {
        "patient": {"nir": nir, "birth_date": birth_date.isoformat()},
        "date": day.isoformat(),
        "situation": None,
    }
