"""Real presigned POST uploads to the S3 server, checked by the bucket-triggered function."""

from __future__ import annotations

import pytest

from infra.api_client import SAMPLE_PDF

pytestmark = pytest.mark.integration

WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


@pytest.fixture
def draft(api, psychologist, unique_fields):
    _, token = psychologist
    response = api.create_candidature(token, unique_fields())
    assert response.status_code == 201
    return token, response.json()["id"]


def _objects(stack, prefix):
    import boto3

    client = boto3.client("s3", region_name="eu-west-3")
    bucket = stack.names.bucket("DocumentsBucket")
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_a_real_pdf_is_verified_and_moved_out_of_uploads(api, stack, draft):
    token, candidature_id = draft
    upload = api.upload_document(token, candidature_id, "diploma", SAMPLE_PDF)
    assert upload["upload_status"] == 204, upload["upload_body"]
    stack.notifier.deliver_pending()
    document = api.wait_document(token, candidature_id, upload["document_id"])
    assert document["status"] == "verified" and document["size"] == len(SAMPLE_PDF)
    assert _objects(stack, f"documents/{candidature_id}/") == [f"documents/{candidature_id}/{upload['document_id']}"]
    assert _objects(stack, f"uploads/{candidature_id}/") == []


def test_an_executable_renamed_pdf_is_rejected_with_a_reason(api, stack, draft):
    token, candidature_id = draft
    upload = api.upload_document(token, candidature_id, "identity", WINDOWS_EXE)
    assert upload["upload_status"] == 204
    stack.notifier.deliver_pending()
    document = api.wait_document(token, candidature_id, upload["document_id"])
    assert document["status"] == "rejected" and "PDF" in document["reason"]
    assert _objects(stack, f"documents/{candidature_id}/") == []
    assert _objects(stack, f"uploads/{candidature_id}/") == []


def test_the_s3_server_itself_refuses_a_file_over_the_declared_size(api, stack, draft):
    token, candidature_id = draft
    upload = api.upload_document(token, candidature_id, "diploma", SAMPLE_PDF * 3, declared_size=len(SAMPLE_PDF))
    assert upload["upload_status"] == 400 and "EntityTooLarge" in upload["upload_body"]
    assert _objects(stack, f"uploads/{candidature_id}/") == []
    stack.notifier.deliver_pending()
    candidature = api.call("GET", f"/v1/candidatures/{candidature_id}", token=token).json()
    assert candidature["documents"][0]["status"] == "pending"


def test_the_s3_server_refuses_another_content_type_or_key_than_signed(api, stack, draft):
    import requests

    token, candidature_id = draft
    ticket = api.call(
        "POST",
        f"/v1/candidatures/{candidature_id}/documents",
        token=token,
        json={"kind": "diploma", "content_type": "application/pdf", "size": 1000},
    ).json()
    upload = ticket["upload"]
    for tampered in (
        {**upload["fields"], "Content-Type": "text/html"},
        {**upload["fields"], "key": f"documents/{candidature_id}/forged"},
    ):
        response = requests.post(upload["url"], data=tampered, files={"file": ("a.pdf", SAMPLE_PDF)}, timeout=10)
        assert response.status_code == 403, response.text
    assert _objects(stack, f"documents/{candidature_id}/") == []


def test_the_bucket_refuses_anonymous_access(api, stack, draft):
    import requests

    token, candidature_id = draft
    upload = api.upload_document(token, candidature_id, "diploma", SAMPLE_PDF)
    stack.notifier.deliver_pending()
    api.wait_document(token, candidature_id, upload["document_id"])
    s3 = stack.environment["AWS_ENDPOINT_URL_S3"]
    key = f"documents/{candidature_id}/{upload['document_id']}"
    assert requests.get(f"{s3}/{stack.names.bucket('DocumentsBucket')}/{key}", timeout=10).status_code == 403
    assert requests.put(f"{s3}/{stack.names.bucket('DocumentsBucket')}/x", data=b"x", timeout=10).status_code == 403


def test_full_flow_create_upload_three_documents_and_submit(api, stack, draft):
    token, candidature_id = draft
    for kind in ("diploma", "identity", "identifier_proof"):
        upload = api.upload_document(token, candidature_id, kind, SAMPLE_PDF)
        assert upload["upload_status"] == 204
    stack.notifier.deliver_pending()
    candidature = api.call("GET", f"/v1/candidatures/{candidature_id}", token=token).json()
    assert [d["status"] for d in candidature["documents"]] == ["verified"] * 3
    submitted = api.call("POST", f"/v1/candidatures/{candidature_id}/submit", token=token)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted" and submitted.json()["submitted_at"]
    refused = api.call(
        "POST",
        f"/v1/candidatures/{candidature_id}/documents",
        token=token,
        json={"kind": "diploma", "content_type": "application/pdf", "size": 100},
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_editable"


def test_the_real_bucket_copies_the_inspected_version_when_another_upload_lands_before_the_copy(stack):
    import uuid

    import boto3

    from msp.storage.documents import DocumentBucket

    client = boto3.client("s3", region_name="eu-west-3")
    bucket = DocumentBucket(stack.names.bucket("DocumentsBucket"))
    race = uuid.uuid4().hex
    key, target = f"uploads/{race}/document", f"documents/{race}/document"
    client.put_object(Bucket=bucket.bucket, Key=key, Body=SAMPLE_PDF)
    inspected = bucket.inspect(key, 16, 1024)
    assert inspected.version and inspected.head == SAMPLE_PDF[:16] and inspected.tail == SAMPLE_PDF
    client.put_object(Bucket=bucket.bucket, Key=key, Body=WINDOWS_EXE)  # the presigned POST used again
    bucket.copy(key, target, inspected)
    assert client.get_object(Bucket=bucket.bucket, Key=target)["Body"].read() == SAMPLE_PDF
    bucket.erase_prefix(f"uploads/{race}/")
    bucket.erase_prefix(f"documents/{race}/")
