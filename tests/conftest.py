"""Shared fixtures. The local stack (DynamoDB Local + SeaweedFS + gateway) starts once per session.

If a component cannot start, every test that needs it errors with the component's own message:
nothing is skipped silently.
"""

from __future__ import annotations

import os
import uuid

import pytest

from infra.api_client import ApiClient
from infra.local_stack import LocalStack
from infra.seed import demo_fields, rpps_with_key

_STORAGE_ENV = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_EVENTBRIDGE", "MAIL_OUTBOX_DIR")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    local = LocalStack(tmp_path_factory.mktemp("stack"), port=0, in_memory=True, prefix="msp-test")
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


@pytest.fixture
def reset_storage_clients():
    """Domain clients are cached per process; tests switching backends start from fresh ones."""
    from msp import config, storage

    def clear():
        for cached in (
            storage.dynamodb_client,
            storage.s3_client,
            storage.events_client,
            storage.ses_client,
            storage.candidature_store,
            storage.document_bucket,
            storage.review_queue_store,
            storage.decision_publisher,
            storage.mailer,
        ):
            cached.cache_clear()
        config.settings.cache_clear()

    clear()
    yield
    clear()


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
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "msp-unit-idempotency")
    monkeypatch.setenv("DOCUMENTS_BUCKET", "msp-unit-documents")
    monkeypatch.setenv("DIRECTORY_TABLE", "msp-unit-directory")
    monkeypatch.setenv("EVENT_BUS", "msp-unit-decisions")
    monkeypatch.setenv("CURSOR_SECRET", "unit-test-cursor-secret-0123456789")
    return dict(os.environ)
