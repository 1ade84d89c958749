"""Shared fixtures. The local stack (DynamoDB Local + SeaweedFS + gateway) starts once per session.

If a component cannot start, every test that needs it errors with the component's own message:
nothing is skipped silently.
"""

from __future__ import annotations

import os
import uuid

import pytest

from infra.api_client import SAMPLE_PDF, ApiClient
from infra.local_stack import LocalStack
from infra.seed import demo_fields, practice_in, rpps_with_key

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
def make_candidature(stack, unique_fields):
    """Writes a candidature straight through the storage module, in any status, with verified
    documents: fast set-up for review tests (the API path is covered by the candidature tests).

    make(status="submitted", department="75", owner_sub=None, files=False, **field overrides)
    """
    from msp.candidatures import stored_document_key
    from msp.clock import now_iso
    from msp.models import AuditEvent, Candidature, CandidatureFields, Document, DocumentKind, Status
    from msp.storage import candidature_store, s3_client

    def make(status="submitted", department="75", owner_sub=None, files=False, **overrides) -> Candidature:
        now = now_iso()
        fields = unique_fields(practices=[practice_in(department)], **overrides)
        documents = [
            Document(
                document_id=str(uuid.uuid4()),
                kind=kind,
                content_type="application/pdf",
                declared_size=len(SAMPLE_PDF),
                size=len(SAMPLE_PDF),
                status="verified",
                requested_at=now,
            )
            for kind in DocumentKind
        ]
        candidature = Candidature(
            id=str(uuid.uuid4()),
            owner_sub=owner_sub or f"psy-{uuid.uuid4().hex[:10]}",
            status=Status(status),
            created_at=now,
            updated_at=now,
            submitted_at=None if status == "draft" else now,
            fields=CandidatureFields.model_validate(fields),
            documents=documents,
        )
        audit = AuditEvent(
            candidature_id=candidature.id,
            version=1,
            actor="test-fixture",
            role="fixture",
            action="fixture",
            from_status=None,
            to_status=candidature.status,
            at=now,
        )
        candidature_store().save(candidature, previous=None, audit=audit)
        if files:
            bucket = stack.names.bucket("DocumentsBucket")
            for document in documents:
                key = stored_document_key(candidature.id, document.document_id)
                s3_client().put_object(Bucket=bucket, Key=key, Body=SAMPLE_PDF, ContentType="application/pdf")
        return candidature

    return make


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
