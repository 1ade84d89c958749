"""Environment of a function, validated once at cold start."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field, SecretStr, model_validator


class Settings(BaseModel):
    app_table: str = Field(alias="APP_TABLE", min_length=3)
    sessions_table: str = Field(alias="SESSIONS_TABLE", min_length=3)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=3)
    documents_bucket: str = Field(alias="DOCUMENTS_BUCKET", min_length=3)
    directory_table: str = Field(alias="DIRECTORY_TABLE", default="", description="listed practices")
    access_journal_table: str = Field(alias="ACCESS_JOURNAL_TABLE", default="", description="patient look-ups")
    access_journal_retention_days: int = Field(alias="ACCESS_JOURNAL_RETENTION_DAYS", default=365, ge=1)
    event_bus: str = Field(alias="EVENT_BUS", default="", description="bus of review decisions")
    region: str = Field(alias="AWS_REGION", default="eu-west-3")
    mail_from: str = Field(alias="MAIL_FROM", default="")
    # The reviewers' shared mailbox: resignations and the daily digest of new candidatures go there.
    reviewers_mail: str = Field(alias="REVIEWERS_MAIL", default="")
    # Secrets Manager secret of the patient key; only the session functions are given it.
    patient_key_secret_arn: str | None = Field(alias="PATIENT_KEY_SECRET_ARN", default=None)
    # Secrets Manager secrets of the cursors' HMAC keys (lists, directory search): only the functions that page.
    cursor_secret_arn: str | None = Field(alias="CURSOR_SECRET_ARN", default=None)
    search_cursor_secret_arn: str | None = Field(alias="SEARCH_CURSOR_SECRET_ARN", default=None)
    # The local stack's stand-ins for these secrets' values (infra.provision.dev_secrets); never set on AWS.
    patient_key_dev_secret: SecretStr | None = Field(alias="PATIENT_KEY_DEV_SECRET", default=None)
    cursor_dev_secret: SecretStr | None = Field(alias="CURSOR_DEV_SECRET", default=None)
    search_cursor_dev_secret: SecretStr | None = Field(alias="SEARCH_CURSOR_DEV_SECRET", default=None)
    # The retention purge's periods, in days after a candidature's last change (template parameters).
    draft_retention_days: int = Field(alias="DRAFT_RETENTION_DAYS", default=183, ge=1)
    withdrawn_retention_days: int = Field(alias="WITHDRAWN_RETENTION_DAYS", default=183, ge=1)
    rejected_retention_days: int = Field(alias="REJECTED_RETENTION_DAYS", default=730, ge=1)
    deconventioned_retention_days: int = Field(alias="DECONVENTIONED_RETENTION_DAYS", default=3650, ge=1)
    execution_env: str = Field(alias="AWS_EXECUTION_ENV", default="")
    # Set by Lambda itself: a job that must go on in a fresh invocation starts it under this name.
    function_name: str | None = Field(alias="AWS_LAMBDA_FUNCTION_NAME", default=None)

    @model_validator(mode="after")
    def _no_dev_secret_on_aws(self) -> Settings:
        if not self.execution_env.startswith("AWS_Lambda"):
            return self
        for name, field in type(self).model_fields.items():
            if name.endswith("_dev_secret") and getattr(self, name) is not None:
                raise ValueError(f"{field.alias} is for the local stack only; on AWS the key comes from its secret")
        return self


@cache
def settings() -> Settings:
    return Settings.model_validate(os.environ)
