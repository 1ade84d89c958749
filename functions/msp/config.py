"""Environment of a function, validated once at cold start."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    app_table: str = Field(alias="APP_TABLE", min_length=3)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=3)
    documents_bucket: str = Field(alias="DOCUMENTS_BUCKET", min_length=3)
    region: str = Field(alias="AWS_REGION", default="eu-west-3")


@cache
def settings() -> Settings:
    return Settings.model_validate(os.environ)
