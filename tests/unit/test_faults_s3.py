"""S3 faults and malformed S3 events, on moto: an outage answers 503 or fails the event so that Lambda retries it,
leaving the document pending and its upload in place until a redelivery finishes the job; a malformed event is
logged and dropped without raising. Every test checks what is stored afterwards."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.exceptions import NoCredentialsError

from infra.api_client import SAMPLE_PDF
from infra.bucket_events import object_created_event
from msp.errors import StorageBusy
from tests.unit.aws_faults import (
    BUCKET,
    TABLES,
    World,
    bare_status,
    dynamodb_error,
    moto_world,
    psychologist,
    s3_error,
    stored_candidature,
    unreachable,
)

OWNER = "psy-documents"
NOT_A_FILE_WE_TAKE = b"MZ\x90\x00\x03\x00\x00\x00 a renamed executable"


@pytest.fixture
def world(moto_env, monkeypatch):
    with moto_world(monkeypatch) as opened:
        yield opened


def request_upload(world: World, candidature_id: str, size: int = len(SAMPLE_PDF)) -> Any:
    body = {"kind": "diploma", "content_type": "application/pdf", "size": size}
    return world.call("POST", f"/v1/candidatures/{candidature_id}/documents", psychologist(OWNER), body)


def uploaded(world: World, content: bytes = SAMPLE_PDF) -> tuple[str, str, dict]:
    """A draft whose diploma upload was asked for and has landed in uploads/: (candidature id, document id,
    the S3 notification of the upload)."""
    candidature_id = stored_candidature("draft", OWNER).id
    document_id = request_upload(world, candidature_id).body["document_id"]
    key = f"uploads/{candidature_id}/{document_id}"
    put = world.plain_s3.put_object(Bucket=BUCKET, Key=key, Body=content, ContentType="application/pdf")
    return candidature_id, document_id, object_created_event(BUCKET, key, len(content), put["ETag"])


def document(world: World, candidature_id: str, document_id: str) -> tuple[str, int]:
    """The document's status and the candidature's version, as stored."""
    candidature = world.storage.candidature_store().get(candidature_id)
    (found,) = [d for d in candidature.documents if d.document_id == document_id]
    return found.status.value, candidature.version


def objects(world: World) -> set[str]:
    return set(world.snapshot()[BUCKET])


def tables(state: dict[str, Any]) -> dict[str, Any]:
    return {name: items for name, items in state.items() if name in TABLES.values()}


# ---------------------------------------------------------------- asking for an upload


def test_an_upload_request_needs_no_s3_request_so_an_s3_outage_cannot_fail_it(world):
    """The presigned POST is signed locally: with S3 refusing every connection the request still answers 201,
    and the document waits, pending, for a file the browser will send once S3 is back."""
    candidature_id = stored_candidature("draft", OWNER).id
    for operation in ("PutObject", "HeadBucket", "GetObject", "ListObjectsV2"):
        world.faults.fail(operation, unreachable)
    world.faults.clear_attempts()

    answer = request_upload(world, candidature_id)

    assert answer.status == 201
    assert not any(operation in world.faults.attempts for operation in ("PutObject", "HeadBucket", "GetObject"))
    assert document(world, candidature_id, answer.body["document_id"]) == ("pending", 2)


def test_a_presign_that_cannot_be_signed_is_503_and_stores_no_document_entry(world):
    candidature_id = stored_candidature("draft", OWNER).id
    before = world.snapshot()

    def no_credentials(**_: Any) -> None:
        raise NoCredentialsError()

    world.storage.s3_client().meta.events.register_first("before-sign.s3.PutObject", no_credentials)
    answer = request_upload(world, candidature_id)

    assert answer.status == 503
    assert answer.body["error"]["code"] == "service_unavailable" and answer.headers["retry-after"] == "2"
    assert world.snapshot() == before, "a document entry was stored without an upload URL to go with it"


# ---------------------------------------------------------------- checking an upload


OUTAGES = {
    "GetObject 503 SlowDown": ("GetObject", s3_error("SlowDown", 503)),
    "GetObject 500 InternalError": ("GetObject", s3_error("InternalError", 500)),
    "GetObject 503 without a body": ("GetObject", bare_status(503)),
    "GetObject 400 RequestTimeout": ("GetObject", s3_error("RequestTimeout", 400)),
    "GetObject unreachable": ("GetObject", unreachable),
    "CopyObject 503 SlowDown": ("CopyObject", s3_error("SlowDown", 503)),
    "CopyObject unreachable": ("CopyObject", unreachable),
    "UpdateItem throttled": ("UpdateItem", dynamodb_error("ProvisionedThroughputExceededException")),
}


@pytest.mark.parametrize("outage", OUTAGES.values(), ids=OUTAGES.keys())
def test_an_outage_during_the_check_fails_the_event_and_leaves_the_document_pending_for_a_redelivery(world, outage):
    operation, failure = outage
    candidature_id, document_id, event = uploaded(world)
    key = f"uploads/{candidature_id}/{document_id}"
    before = world.snapshot()
    world.faults.fail(operation, failure)

    with pytest.raises(StorageBusy):  # Lambda retries a failed S3 event
        world.invoke("VerifyDocumentUploadFunction", event)

    assert world.faults.attempts[operation] == 3, "botocore's retries come first"
    assert tables(world.snapshot()) == tables(before), "the verdict is recorded whole or not at all"
    assert document(world, candidature_id, document_id) == ("pending", 2)
    assert key in objects(world), "the upload must stay for the redelivery to check it"

    world.faults.clear()
    assert world.invoke("VerifyDocumentUploadFunction", event) == {"verified": 1, "rejected": 0, "dropped": 0}
    assert document(world, candidature_id, document_id) == ("verified", 3)
    assert objects(world) == {f"documents/{candidature_id}/{document_id}"}


def test_a_rejected_file_whose_verdict_cannot_be_recorded_is_checked_again_on_redelivery(world):
    candidature_id, document_id, event = uploaded(world, NOT_A_FILE_WE_TAKE)
    world.faults.fail("UpdateItem", dynamodb_error("ThrottlingException"))

    with pytest.raises(StorageBusy):
        world.invoke("VerifyDocumentUploadFunction", event)

    assert document(world, candidature_id, document_id) == ("pending", 2)
    assert objects(world) == {f"uploads/{candidature_id}/{document_id}"}

    world.faults.clear()
    assert world.invoke("VerifyDocumentUploadFunction", event)["rejected"] == 1
    assert document(world, candidature_id, document_id) == ("rejected", 3)
    assert objects(world) == set(), "a rejected file is not kept"


def test_an_upload_left_behind_after_the_verdict_is_removed_by_the_redelivery_without_a_second_verdict(world):
    candidature_id, document_id, event = uploaded(world)
    world.faults.fail("DeleteObject", s3_error("SlowDown", 503))

    with pytest.raises(StorageBusy):
        world.invoke("VerifyDocumentUploadFunction", event)

    assert document(world, candidature_id, document_id) == ("verified", 3), "the verdict and its copy are whole"
    stored, upload = f"documents/{candidature_id}/{document_id}", f"uploads/{candidature_id}/{document_id}"
    assert objects(world) == {stored, upload}

    world.faults.clear()
    world.invoke("VerifyDocumentUploadFunction", event)
    assert document(world, candidature_id, document_id) == ("verified", 3)
    assert objects(world) == {stored}


def test_an_s3_endpoint_that_refuses_connections_fails_the_event_and_the_redelivery_checks_it(world, monkeypatch):
    """Not an injected answer: the S3 client really connects to a loopback port nobody listens on."""
    candidature_id, document_id, event = uploaded(world)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port}")
    world.storage.s3_client.cache_clear()
    world.storage.document_bucket.cache_clear()

    with pytest.raises(StorageBusy):
        world.invoke("VerifyDocumentUploadFunction", event)
    assert len(world.pauses.of("botocore.endpoint")) == 2, "3 attempts, 2 backoffs"
    assert document(world, candidature_id, document_id) == ("pending", 2)

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    world.storage.s3_client.cache_clear()
    world.storage.document_bucket.cache_clear()
    assert world.invoke("VerifyDocumentUploadFunction", event)["verified"] == 1
    assert document(world, candidature_id, document_id) == ("verified", 3)


# ---------------------------------------------------------------- malformed and stray events


def _record(key: Any) -> dict:
    return {"eventSource": "aws:s3", "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}}}


MALFORMED = {
    "no Records": {},
    "Records null": {"Records": None},
    "Records a number": {"Records": 5},
    "Records a string": {"Records": "uploads/a/b"},
    "Records an object": {"Records": {"s3": {}}},
    "record null": {"Records": [None]},
    "record a list": {"Records": [[1, 2]]},
    "s3 null": {"Records": [{"s3": None}]},
    "object missing": {"Records": [{"s3": {"bucket": {"name": BUCKET}}}]},
    "key missing": {"Records": [{"s3": {"object": {}}}]},
    "key a number": {"Records": [_record(7)]},
    "key null": {"Records": [_record(None)]},
    "key a list": {"Records": [_record(["uploads/a/b"])]},
    "key empty": {"Records": [_record("")]},
    "key outside uploads/": {"Records": [_record("documents/{candidature}/{document}")]},
    "key without a document id": {"Records": [_record("uploads/{candidature}")]},
    "key one level too deep": {"Records": [_record("uploads/{candidature}/{document}/x")]},
    "ids that are not ids": {"Records": [_record("uploads/not-an-id/{document}")]},
    "an id too long for a key": {"Records": [_record("uploads/" + "9" * 3000 + "/{document}")]},
    "event a list": [_record("uploads/{candidature}/{document}")],
    "event a string": "uploads/{candidature}/{document}",
    "event null": None,
}


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_filled(item, ids) for item in value]
    if isinstance(value, dict):
        return {name: _filled(item, ids) for name, item in value.items()}
    return value


@pytest.mark.parametrize("event", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_event_is_logged_and_dropped_and_changes_nothing(world, caplog, event):
    """The verified document of a candidature lives under documents/; none of these may touch it, nor raise
    (Lambda would invoke the function again with the same event)."""
    candidature = stored_candidature("draft", OWNER)
    diploma = candidature.documents[0]
    stored = f"documents/{candidature.id}/{diploma.document_id}"
    world.plain_s3.put_object(Bucket=BUCKET, Key=stored, Body=SAMPLE_PDF)
    before = world.snapshot()
    caplog.clear()

    outcome = world.invoke(
        "VerifyDocumentUploadFunction", _filled(event, {"candidature": candidature.id, "document": diploma.document_id})
    )

    assert outcome == {"verified": 0, "rejected": 0, "dropped": 1}
    assert world.snapshot() == before
    assert [r.message for r in caplog.records if r.levelname == "WARNING" and r.message.startswith("dropped")]


def test_only_the_malformed_records_of_an_event_are_dropped(world):
    candidature_id, document_id, event = uploaded(world)
    event["Records"] = [None, _record(5), *event["Records"], _record("elsewhere/x")]
    assert world.invoke("VerifyDocumentUploadFunction", event) == {"verified": 1, "rejected": 0, "dropped": 3}
    assert document(world, candidature_id, document_id) == ("verified", 3)


def test_an_upload_for_an_unknown_candidature_is_dropped_and_only_that_upload_is_removed(world):
    import uuid

    candidature_id, document_id, _ = uploaded(world)
    stray = f"uploads/{uuid.uuid4()}/{uuid.uuid4()}"
    world.plain_s3.put_object(Bucket=BUCKET, Key=stray, Body=SAMPLE_PDF)
    before = world.snapshot()

    outcome = world.invoke("VerifyDocumentUploadFunction", object_created_event(BUCKET, stray, 1, "etag"))

    assert outcome["dropped"] == 1
    after = world.snapshot()
    assert tables(after) == tables(before)
    assert set(after[BUCKET]) == set(before[BUCKET]) - {stray}
    assert document(world, candidature_id, document_id) == ("pending", 2)


def test_an_event_for_an_upload_already_gone_is_dropped_and_the_document_stays_pending(world):
    """E.g. a late redelivery after the bucket's lifecycle expired the upload: nothing to check, no crash loop."""
    candidature_id, document_id, event = uploaded(world)
    world.plain_s3.delete_object(Bucket=BUCKET, Key=f"uploads/{candidature_id}/{document_id}")
    before = world.snapshot()

    assert world.invoke("VerifyDocumentUploadFunction", event)["dropped"] == 1
    assert world.snapshot() == before


def test_a_redelivered_event_for_a_checked_document_changes_nothing(world):
    candidature_id, document_id, event = uploaded(world)
    world.invoke("VerifyDocumentUploadFunction", event)
    before = world.snapshot()

    world.invoke("VerifyDocumentUploadFunction", event)

    assert world.snapshot() == before
    assert document(world, candidature_id, document_id) == ("verified", 3)
