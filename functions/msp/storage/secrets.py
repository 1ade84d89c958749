"""The secrets' values: from Secrets Manager, cached by Powertools, or the local stack's dev values.

A function is given a secret's ARN only (X_SECRET_ARN, with GetSecretValue on that secret alone), never its value
in a variable; on the local stack, X_DEV_SECRET holds the value instead (refused on AWS by msp.config).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from msp.config import settings
from msp.cursors import CursorKeys
from msp.storage.aws import SERVICE_CONFIG, busy, error_code, is_passing

if TYPE_CHECKING:
    from pydantic import SecretStr

    from msp.sessions.rules import PatientKeyring

# Seconds a warm function keeps a secret before reading it again: a rotation reaches every function within this
# (msp.cursors.SIGNING_DELAY counts on it for the cursor keys).
PATIENT_KEY_MAX_AGE = 300
CURSOR_KEYS_MAX_AGE = 300


@cache
def _secrets_provider():
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto_config=SERVICE_CONFIG)


def _cause(error: Exception) -> BaseException | None:
    # Powertools raises GetParameterError while handling boto3's error, without `from`: the cause is the context.
    return error.__cause__ or error.__context__


def _read(arn: str, max_age: int, stage: str = "AWSCURRENT", **options) -> str:
    """The value of the secret's version at `stage`. Throttling and outages (5xx, unreachable) are StorageBusy
    (503), as for the tables."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        document = _secrets_provider().get(arn, max_age=max_age, VersionStage=stage, **options)
    except GetParameterError as error:
        cause = _cause(error)
        if (isinstance(cause, ClientError) and is_passing(cause)) or isinstance(cause, BotoCoreError):
            raise busy() from error
        raise
    return document if isinstance(document, str) else document.decode()


def _required(variable: str, arn: str | None) -> str:
    if not arn:
        raise RuntimeError(f"{variable} is not set: this function was not given that secret")
    return arn


# ---------------------------------------------------------------- the patient key


@lru_cache(maxsize=4)
def _keyring(document: str) -> PatientKeyring:
    from msp.sessions.rules import PatientKeyring

    return PatientKeyring.from_secret(document)


def patient_keyring() -> PatientKeyring:
    """The patient key versions: from Secrets Manager (cached by Powertools), or the local stack's dev value."""
    config = settings()
    if config.patient_key_dev_secret is not None:
        return _keyring(config.patient_key_dev_secret.get_secret_value())
    document = _read(_required("PATIENT_KEY_SECRET_ARN", config.patient_key_secret_arn), PATIENT_KEY_MAX_AGE)
    return _keyring(document)


# ---------------------------------------------------------------- the cursor keys


def queue_cursor_keys() -> CursorKeys:
    """The keys of the lists' cursors (review queue, access journal, a month's sessions)."""
    config = settings()
    return _cursor_keys("CURSOR_SECRET_ARN", config.cursor_secret_arn, config.cursor_dev_secret)


def search_cursor_keys() -> CursorKeys:
    """The keys of the directory search's cursors."""
    config = settings()
    return _cursor_keys("SEARCH_CURSOR_SECRET_ARN", config.search_cursor_secret_arn, config.search_cursor_dev_secret)


def _cursor_keys(variable: str, arn: str | None, dev_secret: SecretStr | None) -> CursorKeys:
    if dev_secret is not None:
        return CursorKeys.from_secret(dev_secret.get_secret_value())
    arn = _required(variable, arn)
    return _keys_with_previous(arn, _read(arn, CURSOR_KEYS_MAX_AGE))


@lru_cache(maxsize=4)
def _keys_with_previous(arn: str, current: str) -> CursorKeys:
    """AWSPREVIOUS changes only when AWSCURRENT does: read once for each current value, never cached apart from it
    (Powertools keys its cache on the secret alone, whatever the stage asked)."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        previous: str | None = _read(arn, 0, "AWSPREVIOUS", force_fetch=True)
    except GetParameterError as error:
        cause = _cause(error)
        if not (isinstance(cause, ClientError) and error_code(cause) == "ResourceNotFoundException"):
            raise
        previous = None  # never rotated
    return CursorKeys.from_secret(current, previous)
