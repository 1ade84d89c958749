"""The patient key's secret: from Secrets Manager, cached by Powertools, or the local stack's dev value."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from msp.config import settings
from msp.storage.aws import SERVICE_CONFIG, THROTTLING_CODES, busy, error_code

if TYPE_CHECKING:
    from msp.sessions.rules import PatientKeyring

PATIENT_KEY_MAX_AGE = 300  # seconds a warm function keeps the secret before reading it again


@cache
def _secrets_provider():
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto_config=SERVICE_CONFIG)


@lru_cache(maxsize=4)
def _keyring(document: str) -> PatientKeyring:
    from msp.sessions.rules import PatientKeyring

    return PatientKeyring.from_secret(document)


def patient_keyring() -> PatientKeyring:
    """The patient key versions: from Secrets Manager (cached by Powertools), or the local stack's dev value."""
    config = settings()
    if config.patient_key_dev_secret is not None:
        return _keyring(config.patient_key_dev_secret.get_secret_value())
    if not config.patient_key_secret_arn:
        raise RuntimeError("PATIENT_KEY_SECRET_ARN is not set: this function was not given the patient key secret")
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        document = _secrets_provider().get(config.patient_key_secret_arn, max_age=PATIENT_KEY_MAX_AGE)
    except GetParameterError as error:
        cause = error.__cause__
        throttled = isinstance(cause, ClientError) and error_code(cause) in THROTTLING_CODES
        if throttled or isinstance(cause, BotoCoreError):
            raise busy() from error
        raise
    return _keyring(document if isinstance(document, str) else document.decode())
