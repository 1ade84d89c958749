"""Shared fixtures. The local stack (DynamoDB Local + SeaweedFS + gateway) starts once per session.

If a component cannot start, every test that needs it errors with the component's own message:
nothing is skipped silently.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import random
import uuid

import pytest

from infra.api_client import SAMPLE_PDF, ApiClient
from infra.local_stack import LocalStack
from infra.seed import demo_fields, practice_in, rpps_with_key
from infra.template import load_template
from tests.storage_view import clear_storage_caches
from tests.stored_candidatures import store_candidature

# A module of functions/ imported while tests are collected (msp.http, a handler) creates its Powertools logger then:
# it must get the service name Lambda gives it, or its log lines go to another logger than the handlers' that the
# log-capturing tests read.
os.environ.setdefault(
    "POWERTOOLS_SERVICE_NAME",
    load_template().raw["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"],
)
# The business metrics' namespace, as Lambda gives it to every function (template parameter MetricsNamespace).
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", load_template().parameters["MetricsNamespace"]["Default"])

_STORAGE_ENV = (
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
    "AWS_ENDPOINT_URL_SESV2",
    "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_LAMBDA",
)


@pytest.fixture
def function_log():
    """What the functions' Powertools logger writes while the test runs (their JSON lines), in a StringIO."""
    from aws_lambda_powertools import Logger

    Logger()  # the service's first Logger makes the handler that every handler module's Logger() then shares
    printed = io.StringIO()
    service = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    streams = [(handler, handler.setStream(printed)) for handler in service.handlers if hasattr(handler, "setStream")]
    assert streams, "the functions' Powertools logger has no stream to capture"
    yield printed
    for handler, stream in streams:
        handler.setStream(stream)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # Lambda's retry waits of a failed asynchronous invocation (1 then 2 minutes) take 0.6 s and 1.2 s here.
    local = LocalStack(
        tmp_path_factory.mktemp("stack"), port=0, in_memory=True, prefix="msp-test", async_time_scale=0.01
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture
def api(stack) -> ApiClient:
    return ApiClient(stack.base_url, stack.issuer)


@pytest.fixture
def unique_fields():
    """Valid candidature fields with a fresh, well-formed (invented) RPPS number."""

    def make(index: int = 0, **overrides):
        fields = demo_fields(index)
        fields["identifier"] = {"type": "rpps", "value": rpps_with_key(f"{uuid.uuid4().int % 10**10:010d}")}
        fields.update(overrides)
        return fields

    return make


@pytest.fixture
def psychologist(api):
    """A new psychologist: (sub, token)."""
    sub = f"psy-{uuid.uuid4().hex[:10]}"
    return sub, api.token("psychologist", sub=sub)


def nir_for(birth: dt.date, *, sex: str = "2", place: str = "75056", order: str = "123") -> str:
    """A well-formed (invented) NIR for someone born in `birth`'s month."""
    from msp.sessions.nir import control_key

    first_13 = f"{sex}{birth.year % 100:02d}{birth.month:02d}{place}{order}"
    return f"{first_13}{control_key(first_13):02d}"


@pytest.fixture
def new_patient():
    """A patient no other test uses: {"nir", "birth_date"} with a fresh, well-formed NIR."""
    draw = random.SystemRandom()

    def make(birth_date: str = "1990-05-14") -> dict[str, str]:
        department = draw.choice([d for d in range(1, 96) if d != 20])
        place = f"{department:02d}{draw.randint(1, 999):03d}"
        nir = nir_for(
            dt.date.fromisoformat(birth_date), sex=draw.choice("12"), place=place, order=f"{draw.randint(1, 999):03d}"
        )
        return {"nir": nir, "birth_date": birth_date}

    return make


def set_convention(
    sub: str, status: str = "accepted", department: str = "75", start: str = "2022-04-05", end: str | None = None
) -> None:
    """What the review workflow writes when it accepts (or deconventions) a psychologist; by default a
    convention running since the programme began."""
    from msp.clock import now_iso
    from msp.storage.conventions import record_convention

    record_convention(
        psychologist_sub=sub,
        status=status,
        candidature_id=str(uuid.uuid4()),
        psychologist_id=f"psy-{sub}",
        department=department,
        updated_at=now_iso(),
        start_date=start,
        end_date=end,
    )


@pytest.fixture
def on_day():
    """on_day(date): the stack (its functions run in this process) runs as if that day were today in Paris, as
    `make run TODAY=...` does; the real clock is back after the test."""
    from msp.clock import shift_to

    yield shift_to
    shift_to(None)


@pytest.fixture
def conventioned(api):
    """A psychologist whose candidature is accepted: make() -> (sub, token)."""

    def make(department: str = "75") -> tuple[str, str]:
        sub = f"psy-{uuid.uuid4().hex[:10]}"
        set_convention(sub, "accepted", department)
        return sub, api.token("psychologist", sub=sub)

    return make


@pytest.fixture
def make_candidature(stack, unique_fields):
    """Writes a candidature straight through the storage module, in any status, with verified
    documents: fast set-up for review tests (the API path is covered by the candidature tests).

    make(status="submitted", department="75", owner_sub=None, files=False, **field overrides)
    """
    from msp.candidatures.use_cases import stored_document_key
    from msp.storage.aws import s3_client

    def make(status="submitted", department="75", owner_sub=None, files=False, **overrides):
        fields = unique_fields(practices=[practice_in(department)], **overrides)
        candidature = store_candidature(
            fields,
            owner_sub=owner_sub or f"psy-{uuid.uuid4().hex[:10]}",
            status=status,
            document_size=len(SAMPLE_PDF),
        )
        if files:
            bucket = stack.names.bucket("DocumentsBucket")
            for document in candidature.documents:
                key = stored_document_key(candidature.id, document.document_id)
                s3_client().put_object(Bucket=bucket, Key=key, Body=SAMPLE_PDF, ContentType="application/pdf")
        return candidature

    return make


def clear_storage_clients() -> None:
    """Domain clients and settings are cached per process: forget them, so the next call reads the environment."""
    import boto3

    from msp import config, idempotency

    # boto3's default session keeps the credentials it first resolved: moto's fake ones must not outlive
    # the test, nor the local stack's leak into it.
    boto3.DEFAULT_SESSION = None
    clear_storage_caches()
    idempotency._persistence.cache_clear()
    config.settings.cache_clear()


@pytest.fixture
def reset_storage_clients():
    """Domain clients are cached per process; tests switching backends start from fresh ones."""
    clear_storage_clients()
    yield
    clear_storage_clients()


@pytest.fixture(scope="module")
def tally_storage(stack):
    """A SessionsTable and a documents bucket of the module's own, made from the template on the local stack, with
    the functions pointed at them: tally tests must know every session of a year, and other tests declare
    sessions in the shared table. Yields the names and the environment a function sees."""
    import boto3

    from infra.provision import table_definition

    name = f"msp-test-tally-{uuid.uuid4().hex[:8]}"
    dynamodb = boto3.client("dynamodb", region_name="eu-west-3")
    dynamodb.create_table(**table_definition(name, stack.template.tables["SessionsTable"]))
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    boto3.client("s3", region_name="eu-west-3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SESSIONS_TABLE", name)
        patch.setenv("DOCUMENTS_BUCKET", name)
        clear_storage_clients()
        yield {"table": name, "bucket": name, "environment": dict(os.environ)}
    clear_storage_clients()


@pytest.fixture(scope="module")
def own_tables(stack):
    """An AppTable and a DirectoryTable of the module's own, made from the template on the local stack, with the
    functions pointed at them: a scenario can then check the whole directory against every accepted candidature
    (tests elsewhere write accepted candidatures without listing them). Yields the tables' names."""
    import boto3

    from infra.provision import table_definition

    dynamodb = boto3.client("dynamodb", region_name="eu-west-3")
    suffix = uuid.uuid4().hex[:8]
    names = {logical_id: f"msp-test-{logical_id}-{suffix}" for logical_id in ("AppTable", "DirectoryTable")}
    for logical_id, name in names.items():
        dynamodb.create_table(**table_definition(name, stack.template.tables[logical_id]))
    for name in names.values():
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APP_TABLE", names["AppTable"])
        patch.setenv("DIRECTORY_TABLE", names["DirectoryTable"])
        clear_storage_clients()
        yield names
    clear_storage_clients()


@pytest.fixture
def moto_env(monkeypatch, reset_storage_clients):
    """Environment for moto-backed unit tests: no local endpoints, fake credentials, test resource names."""
    for name in _STORAGE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("APP_TABLE", "msp-unit-app")
    monkeypatch.setenv("SESSIONS_TABLE", "msp-unit-sessions")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "msp-unit-idempotency")
    monkeypatch.setenv("DOCUMENTS_BUCKET", "msp-unit-documents")
    monkeypatch.setenv("DIRECTORY_TABLE", "msp-unit-directory")
    monkeypatch.setenv("ACCESS_JOURNAL_TABLE", "msp-unit-journal")
    monkeypatch.setenv("EVENT_BUS", "msp-unit-decisions")
    monkeypatch.setenv("CURSOR_DEV_SECRET", "unit-test-cursor-secret-0123456789")
    return dict(os.environ)
