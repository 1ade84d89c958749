"""Delivers S3 ObjectCreated notifications to the function the template wires to the bucket.

The local S3 server has no notifications, so new objects under the trigger's prefix are found
by listing, and each is delivered once, in the event shape S3 sends to Lambda, as the asynchronous
invocation S3 makes (retried, then recorded in the function's on-failure queue, by the runtime).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from urllib.parse import quote_plus

import boto3

from infra.components import REGION
from infra.lambda_runtime import LambdaRuntime
from infra.template import BucketTrigger

log = logging.getLogger("bucket-events")


def object_created_event(bucket: str, key: str, size: int, etag: str) -> dict:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Post",
                "userIdentity": {"principalId": "local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "local", "x-amz-id-2": "local"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "local",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "local"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag.strip('"'),
                        "sequencer": "0",
                    },
                },
            }
        ]
    }


class BucketNotifier:
    def __init__(self, runtime: LambdaRuntime, triggers: list[BucketTrigger], bucket_names: dict[str, str]):
        self.runtime = runtime
        self.triggers = [(t, bucket_names[t.bucket]) for t in triggers]
        self.delivered: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_pending(self, wait: bool = True) -> int:
        """Deliver every not yet delivered object and, with `wait`, wait until every asynchronous invocation is
        done; returns how many were delivered."""
        client = boto3.client("s3", region_name=REGION)
        count = 0
        present: set[tuple[str, str]] = set()
        with self._lock:
            for trigger, bucket in self.triggers:
                paginator = client.get_paginator("list_objects_v2")
                for page in paginator.paginate(Bucket=bucket, Prefix=trigger.prefix):
                    for obj in page.get("Contents", []):
                        marker = (obj["Key"], obj["ETag"])
                        present.add(marker)
                        if marker in self.delivered:
                            continue
                        self.delivered.add(marker)
                        event = object_created_event(bucket, obj["Key"], obj["Size"], obj["ETag"])
                        self.runtime.invoke_async(trigger.function, event)
                        count += 1
            # Objects leave the prefix once checked: forget them so the set stays small.
            self.delivered &= present
        if wait:
            self.runtime.wait_async_idle()
        return count

    def start(self, interval: float = 0.3) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.deliver_pending(wait=False)
                except Exception:
                    log.exception("bucket polling failed")

        self._thread = threading.Thread(target=loop, name="bucket-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
