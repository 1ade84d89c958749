"""A secret's versions in Secrets Manager, as its rotation (msp.cursor_rotation) reads and moves them."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.exceptions import ClientError

from msp.config import settings
from msp.cursor_rotation import CURRENT, PENDING
from msp.storage.aws import SERVICE_CONFIG, error_code


@cache
def secretsmanager_client():
    return boto3.client("secretsmanager", region_name=settings().region, config=SERVICE_CONFIG)


class SecretsManagerVersions:
    def __init__(self, secret_id: str):
        self.secret_id = secret_id

    def stages(self) -> dict[str, list[str]]:
        return secretsmanager_client().describe_secret(SecretId=self.secret_id).get("VersionIdsToStages", {})

    def value(self, version_id: str, stage: str) -> str | None:
        try:
            answer = secretsmanager_client().get_secret_value(
                SecretId=self.secret_id, VersionId=version_id, VersionStage=stage
            )
        except ClientError as error:
            # The version RotateSecret labelled before createSecret has no value yet.
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise
        return answer["SecretString"]

    def put_pending(self, version_id: str, value: str) -> None:
        secretsmanager_client().put_secret_value(
            SecretId=self.secret_id, ClientRequestToken=version_id, SecretString=value, VersionStages=[PENDING]
        )

    def move_current(self, to_version: str, from_version: str) -> None:
        secretsmanager_client().update_secret_version_stage(
            SecretId=self.secret_id, VersionStage=CURRENT, MoveToVersionId=to_version, RemoveFromVersionId=from_version
        )
