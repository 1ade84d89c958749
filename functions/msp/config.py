"""Environment of a function, validated once at cold start."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    app_table: str = Field(alias="APP_TABLE", min_length=3)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=3)
    documents_bucket: str = Field(alias="DOCUMENTS_BUCKET", min_length=3)
    directory_table: str = Field(alias="DIRECTORY_TABLE", default="", description="listed practices")
    event_bus: str = Field(alias="EVENT_BUS", default="", description="bus of review decisions")
    region: str = Field(alias="AWS_REGION", default="eu-west-3")
    # Only the functions that need them get these (see template.yaml).
    cursor_secret: str = Field(alias="CURSOR_SECRET", default="", description="HMAC key of queue cursors")
    mail_from: str = Field(alias="MAIL_FROM", default="")
    # Local stack only: write e-mails as files in this folder instead of sending them with SES.
    mail_outbox_dir: str | None = Field(alias="MAIL_OUTBOX_DIR", default=None)


@cache
def settings() -> Settings:
    return Settings.model_validate(os.environ)
