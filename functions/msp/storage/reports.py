"""The tally's reports and its work in progress, in the documents bucket.

Reports go to reports/<year>/<run id>/, with reports/<year>/latest.json naming the last complete one. A run in
progress keeps its plan and one checkpoint per shard under tally-work/ (expired by the bucket's lifecycle): each
checkpoint is one object holding the shard's counts and the index key they stop at, written whole, so a run
resumed from any of them never counts a page twice.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from msp.config import settings
from msp.storage.aws import aws_errors, error_code, s3_client

REPORTS_PREFIX = "reports"
TALLY_WORK_PREFIX = "tally-work"


def report_prefix(year: int, run_id: str) -> str:
    return f"{REPORTS_PREFIX}/{year}/{run_id}/"


def latest_key(year: int) -> str:
    return f"{REPORTS_PREFIX}/{year}/latest.json"


def _work_prefix(year: int, run_id: str) -> str:
    return f"{TALLY_WORK_PREFIX}/{year}/{run_id}/"


class ReportStore:
    def __init__(self, bucket: str):
        self.bucket = bucket

    def _put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._put(key, body, "application/json")

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        with aws_errors():
            s3_client().put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def _get_json(self, key: str) -> Any:
        with aws_errors():
            body = s3_client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(body)

    def _exists(self, key: str) -> bool:
        with aws_errors():
            listed = s3_client().list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(entry["Key"] == key for entry in listed.get("Contents", []))

    def run_state(self, year: int, run_id: str) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]]]:
        """A run's manifest and its shards' checkpoints, as far as they were saved (one listing, then reads)."""
        prefix = _work_prefix(year, run_id)
        keys: list[str] = []
        with aws_errors():
            for listed in s3_client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(entry["Key"] for entry in listed.get("Contents", []))
        manifest = self._get_json(f"{prefix}run.json") if f"{prefix}run.json" in keys else None
        shards = {}
        for key in keys:
            name = key.removeprefix(prefix)
            if name.startswith("shard-") and name.endswith(".json"):
                checkpoint = self._get_json(key)
                shards[int(checkpoint["shard"])] = checkpoint
        return manifest, shards

    def save_run(self, year: int, run_id: str, manifest: dict[str, Any]) -> None:
        self._put_json(f"{_work_prefix(year, run_id)}run.json", manifest)

    def save_checkpoint(self, year: int, run_id: str, shard: int, checkpoint: dict[str, Any]) -> None:
        self._put_json(f"{_work_prefix(year, run_id)}shard-{shard:02d}.json", checkpoint)

    def write_report(self, year: int, run_id: str, files: dict[str, tuple[bytes, str]]) -> None:
        prefix = report_prefix(year, run_id)
        for name, (body, content_type) in files.items():
            self._put(f"{prefix}{name}", body, content_type)

    def set_latest(self, year: int, pointer: dict[str, Any]) -> None:
        """Written after every file of the report, so it never names a report still being written."""
        self._put_json(latest_key(year), pointer)

    def latest(self, year: int) -> dict[str, Any] | None:
        """The pointer to the year's last complete report; None when no tally has completed for that year."""
        key = latest_key(year)
        try:
            return self._get_json(key)
        except ClientError as error:
            code = error_code(error)
            if code in {"NoSuchKey", "404"}:
                return None
            # Without s3:ListBucket S3 answers a missing key with 403; the listing tells absent from forbidden.
            if code == "AccessDenied" and not self._exists(key):
                return None
            raise

    def read_json(self, key: str) -> Any:
        return self._get_json(key)


@cache
def report_store() -> ReportStore:
    return ReportStore(settings().documents_bucket)
