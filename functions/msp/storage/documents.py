"""The documents bucket: presigned uploads and downloads, and what the upload check reads, copies and deletes."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from msp.config import settings
from msp.errors import NotFound
from msp.storage.aws import aws_errors, s3_client

if TYPE_CHECKING:
    from msp.candidatures.documents import UploadedObject


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
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                    "ResponseCacheControl": "no-store",
                },
                ExpiresIn=expires_in,
            )

    def inspect(self, key: str, head_length: int, tail_length: int) -> UploadedObject:
        from msp.candidatures.documents import UploadedObject

        try:
            with aws_errors():
                head, response = self._read_range(key, f"bytes=0-{head_length - 1}")
                version = response.get("VersionId")
                content_range = response.get("ContentRange", "")
                size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else response["ContentLength"]
                # The tail of the same version; the ETag condition fails the read if a bucket without versions
                # had the key overwritten meanwhile.
                tail, _ = self._read_range(
                    key, f"bytes=-{tail_length}", IfMatch=response["ETag"], **_version_of(version)
                )
        except ClientError as error:
            if is_missing_object(error):
                raise NotFound("No such object.") from error
            raise
        return UploadedObject(head=head, tail=tail, size=size, etag=response["ETag"], version=version)

    def _read_range(self, key: str, byte_range: str, **conditions: str) -> tuple[bytes, dict]:
        response = s3_client().get_object(Bucket=self.bucket, Key=key, Range=byte_range, **conditions)
        return response["Body"].read(), response

    def copy(self, source_key: str, target_key: str, inspected: UploadedObject) -> None:
        with aws_errors():
            s3_client().copy_object(
                Bucket=self.bucket,
                Key=target_key,
                CopySource={"Bucket": self.bucket, "Key": source_key, **_version_of(inspected.version)},
                CopySourceIfMatch=inspected.etag,
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


def _version_of(version: str | None) -> dict[str, str]:
    return {"VersionId": version} if version else {}


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
