"""`make run BACKEND=moto` serves the same API through the same code; only the endpoints differ."""

from __future__ import annotations

import pytest

from infra.api_client import ApiClient
from infra.local_stack import LocalStack
from infra.seed import demo_fields
from tests.conftest import clear_storage_clients


@pytest.fixture(scope="module")
def moto_stack(tmp_path_factory, stack):
    # The session stack's environment is restored afterwards: the moto stack rewrites the endpoints.
    import os

    saved = dict(os.environ)
    clear_storage_clients()
    local = LocalStack(tmp_path_factory.mktemp("moto"), backend="moto", port=0, prefix="msp-moto")
    local.start()
    yield local
    local.stop()
    os.environ.clear()
    os.environ.update(saved)
    clear_storage_clients()


def test_candidature_flow_on_moto(moto_stack):
    api = ApiClient(moto_stack.base_url, moto_stack.issuer)
    token = api.token("psychologist", sub="moto-user")
    created = api.create_candidature(token, demo_fields(2))
    assert created.status_code == 201, created.text
    candidature_id = created.json()["id"]
    assert moto_stack.environment["AWS_ENDPOINT_URL_DYNAMODB"] == moto_stack.environment["AWS_ENDPOINT_URL_S3"]
    read = api.call("GET", f"/v1/candidatures/{candidature_id}", token=token)
    assert read.status_code == 200 and read.json()["last_name"] == "Petit"
    ticket = api.call(
        "POST",
        f"/v1/candidatures/{candidature_id}/documents",
        token=token,
        json={"kind": "diploma", "content_type": "application/pdf", "size": 100},
    )
    assert ticket.status_code == 201
    assert ticket.json()["upload"]["url"].startswith(moto_stack.environment["AWS_ENDPOINT_URL_S3"])
