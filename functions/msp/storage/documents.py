"""The documents bucket: presigned uploads and downloads, and what the upload check reads, copies and deletes."""

from __future__ import annotations

from functools import cache

from botocore.exceptions import ClientError

from msp.config import settings
from msp.errors import NotFound
from msp.storage.aws import aws_errors, s3_client


class DocumentBucket:
    def __init__(self, bucket: str):
        self.bucket = bucket

    def presign_upload(self, key: str, content_type: str, max_size: int, expires_in: int) -> tuple[str, dict]:
        with aws_errors():
            post = s3_client().generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_size]],
                ExpiresIn=expires_in,
            )
        return post["url"], post["fields"]

    def presign_download(self, key: str, content_type: str, filename: str, expires_in: int) -> str:
        with aws_errors():
            return s3_client().generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": f'inline; filename="{filename}"',
                    "ResponseCacheControl": "no-store",
                },
                ExpiresIn=expires_in,
            )

    def read_head(self, key: str, length: int) -> tuple[bytes, int]:
        """The first bytes of an object and its total size; NotFound when there is no such object."""
        try:
            with aws_errors():
                response = s3_client().get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}")
                head = response["Body"].read()
        except ClientError as error:
            if is_missing_object(error):
                raise NotFound("No such object.") from error
            raise
        content_range = response.get("ContentRange", "")
        total = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else response["ContentLength"]
        return head, total

    def copy(self, source_key: str, target_key: str) -> None:
        with aws_errors():
            s3_client().copy_object(
                Bucket=self.bucket, Key=target_key, CopySource={"Bucket": self.bucket, "Key": source_key}
            )

    def delete(self, key: str) -> None:
        with aws_errors():
            s3_client().delete_object(Bucket=self.bucket, Key=key)

    def erase_prefix(self, prefix: str) -> int:
        """Delete every version and delete marker under the prefix (the bucket is versioned: deleting a key
        only hides it); the number erased."""
        erased = 0
        with aws_errors():
            for page in s3_client().get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                versions = [
                    {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                    for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if versions:
                    answer = s3_client().delete_objects(Bucket=self.bucket, Delete={"Objects": versions, "Quiet": True})
                    if answer.get("Errors"):
                        raise RuntimeError(f"{len(answer['Errors'])} object versions under {prefix} were not erased")
                    erased += len(versions)
        return erased


def is_missing_object(error: Exception) -> bool:
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in {
        "NoSuchKey",
        "404",
        "NotFound",
    }


# ---------------------------------------------------------------- review queue


@cache
def document_bucket() -> DocumentBucket:
    return DocumentBucket(settings().documents_bucket)
