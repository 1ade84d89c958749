"""The retention purge on DynamoDB Local and the S3 server (a versioned bucket, as deployed): nothing of a purged
candidature remains besides its anonymised skeleton, a second run erases nothing, and a run killed midway, or
stopped by its time budget, finishes when run again."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import boto3
import pytest

from infra.api_client import SAMPLE_PDF
from msp.clock import utc_now

LATER = dt.timedelta(days=800)  # past the default retention of drafts, withdrawn and rejected candidatures


def _transition(api, candidature_id, action, version, reason=None):
    body = {"action": action, "expected_version": version} | ({"reason": reason} if reason else {})
    token = api.token("admin", sub="admin-purge")
    response = api.call("POST", f"/v1/candidatures/{candidature_id}/transitions", token=token, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def bucket(stack):
    return stack.names.bucket("DocumentsBucket")


@pytest.fixture
def population(api, stack, own_tables, make_candidature, bucket):
    """make() -> (ids to purge, ids to keep): a draft holding its identifier, a withdrawn and a rejected
    candidature (with the reviewer's reason naming the psychologist, its e-mail sent), each with documents in
    several versions and a delete marker; an accepted and a deconventioned one, kept by the legal retention."""
    s3 = boto3.client("s3", region_name="eu-west-3")

    def files(candidature_id: str) -> None:
        for prefix in ("documents", "uploads"):
            key = f"{prefix}/{candidature_id}/{uuid.uuid4()}"
            s3.put_object(Bucket=bucket, Key=key, Body=SAMPLE_PDF)
            s3.put_object(Bucket=bucket, Key=key, Body=SAMPLE_PDF + b"%v2")
        s3.delete_object(Bucket=bucket, Key=key)  # a delete marker on top of two versions

    def name() -> dict[str, str]:
        """A last name no other candidature has, to look for after the purge."""
        return {"last_name": "Effacée " + "".join(chr(97 + int(c, 16)) for c in uuid.uuid4().hex[:10])}

    def make():
        draft = make_candidature(status="draft", **name())
        withdrawn = make_candidature(status="withdrawn", **name())
        rejected = make_candidature(status="in_review", **name())
        _transition(api, rejected.id, "reject", 1, reason=f"Dossier de Mme {rejected.fields.last_name} incomplet.")
        kept = make_candidature(status="in_review")
        _transition(api, kept.id, "accept", 1)
        ended = make_candidature(status="in_review")
        _transition(api, ended.id, "accept", 1)
        _transition(api, ended.id, "deconvention", 2, reason="Cessation d'activité.")
        stack.events.wait_idle()
        purged = {draft.id: draft, withdrawn.id: withdrawn, rejected.id: rejected}
        for candidature_id in [*purged, kept.id, ended.id]:
            files(candidature_id)
        return purged, {kept.id, ended.id}

    return make


def _items_of(table: str, candidature_id: str) -> list[dict]:
    client = boto3.client("dynamodb", region_name="eu-west-3")
    items = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += [item for item in page["Items"] if candidature_id in json.dumps(item)]
    return items


def _versions(bucket: str, candidature_id: str) -> int:
    s3 = boto3.client("s3", region_name="eu-west-3")
    found = 0
    for prefix in ("documents", "uploads"):
        listed = s3.list_object_versions(Bucket=bucket, Prefix=f"{prefix}/{candidature_id}/")
        found += len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))
    return found


def _assert_only_skeleton_left(table: str, bucket: str, candidature) -> None:
    items = _items_of(table, candidature.id)
    text = json.dumps(items, ensure_ascii=False)
    for personal in (candidature.fields.last_name, candidature.fields.email, candidature.fields.identifier.value):
        assert personal not in text, personal
    kinds = sorted(item["sk"]["S"].split("#")[0] for item in items)
    assert set(kinds) <= {"AUDIT", "CANDIDATURE"} and kinds.count("CANDIDATURE") == 1, kinds
    for item in items:
        assert "owner_sub" not in item and "reason" not in item
        if item["sk"]["S"].startswith("AUDIT#"):
            assert item["actor"]["S"] in {"anonymised", "retention"}
    (skeleton,) = [item for item in items if item["sk"]["S"] == "CANDIDATURE"]
    assert "purged_at" in skeleton and skeleton["status"]["S"] in {"draft", "withdrawn", "rejected"}
    assert _versions(bucket, candidature.id) == 0


def _purge(bucket_port, **options):
    from msp.candidatures.retention import RetentionPolicy, purge_expired
    from msp.storage.retention import retention_store

    return purge_expired(retention_store(), bucket_port, RetentionPolicy(), utc_now() + LATER, **options)


def test_the_bucket_keeps_versions_as_deployed(bucket):
    status = boto3.client("s3", region_name="eu-west-3").get_bucket_versioning(Bucket=bucket)
    assert status.get("Status") == "Enabled"


def test_a_purge_leaves_only_anonymised_skeletons_and_a_second_run_erases_nothing(own_tables, population, bucket):
    from msp.storage.documents import document_bucket

    purged, kept = population()
    before = {candidature_id: _versions(bucket, candidature_id) for candidature_id in purged}
    assert all(count == 5 for count in before.values())  # 2 + 2 versions and a delete marker

    report = _purge(document_bucket())
    assert report.complete and purged.keys() <= set(report.purged) and not kept & set(report.purged)
    assert report.object_versions_erased >= sum(before.values())
    assert report.audit_events_anonymised >= 1 and report.items_erased >= 2  # e-mail marker, last-holder record
    for candidature in purged.values():
        _assert_only_skeleton_left(own_tables["AppTable"], bucket, candidature)
    for candidature_id in kept:
        assert _versions(bucket, candidature_id) == 5

    again = _purge(document_bucket())
    assert again.complete and again.purged == []
    assert (again.items_erased, again.audit_events_anonymised, again.object_versions_erased) == (0, 0, 0)


class _Crashing:
    """The documents bucket, until the purge reaches its `crash_at`-th prefix: then the run dies, as a Lambda
    killed by its timeout or an outage would."""

    def __init__(self, bucket, crash_at: int):
        self.bucket, self.crash_at, self.calls = bucket, crash_at, 0

    def erase_prefix(self, prefix: str) -> int:
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("killed midway")
        return self.bucket.erase_prefix(prefix)


def test_a_run_killed_midway_is_finished_by_the_next(own_tables, population, bucket):
    from msp.storage.documents import document_bucket

    purged, _ = population()
    with pytest.raises(RuntimeError, match="killed midway"):
        _purge(_Crashing(document_bucket(), crash_at=4))  # after one candidature and a half
    finished = _purge(document_bucket())
    assert finished.complete
    for candidature in purged.values():
        _assert_only_skeleton_left(own_tables["AppTable"], bucket, candidature)
    assert _purge(document_bucket()).purged == []


def test_a_run_out_of_time_says_where_to_resume_and_the_next_invocation_finishes(own_tables, population, bucket, stack):
    from msp.storage.documents import document_bucket

    purged, _ = population()
    budget = iter([True, True])
    stopped = _purge(document_bucket(), time_left=lambda: next(budget, False))
    assert not stopped.complete and stopped.resume_from and len(stopped.purged) <= 2
    resumed = _purge(document_bucket(), start=stopped.resume_from)
    assert resumed.complete
    for candidature in purged.values():
        _assert_only_skeleton_left(own_tables["AppTable"], bucket, candidature)

    # The scheduled function itself: today nothing is past its retention.
    outcome = stack.runtime.invoke("PurgeCandidaturesFunction", {})
    assert outcome["complete"] is True and outcome["purged"] == []
