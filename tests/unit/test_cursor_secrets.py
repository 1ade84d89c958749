"""The cursor secrets on moto's Secrets Manager: read at run time and cached, busy when throttled, and rotated
in four steps that may each run again."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from infra.lambda_runtime import LambdaContext
from msp import config
from msp.cursors import LIST_CURSOR_LIFETIME, SIGNING_DELAY, CursorKeys, open_sealed, seal
from msp.errors import StorageBusy
from msp.storage.secrets import CURSOR_KEYS_MAX_AGE

from .aws_faults import REGION, dynamodb_error, moto_world, reviewer

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
FIRST_KEY = "k" * 64  # as the template's GenerateSecretString makes it: 64 letters and digits, bare


@pytest.fixture
def world(moto_env, monkeypatch):
    monkeypatch.delenv("CURSOR_DEV_SECRET", raising=False)
    monkeypatch.delenv("SEARCH_CURSOR_DEV_SECRET", raising=False)
    with moto_world(monkeypatch) as opened:
        client = boto3.client("secretsmanager", region_name=REGION)
        for variable, name in (("CURSOR_SECRET_ARN", "lists"), ("SEARCH_CURSOR_SECRET_ARN", "search")):
            arn = client.create_secret(Name=f"msp/unit/{name}-cursors", SecretString=FIRST_KEY)["ARN"]
            monkeypatch.setenv(variable, arn)
        config.settings.cache_clear()
        opened.faults.watch(opened.storage._secrets_provider().client)
        yield opened


@pytest.fixture
def later(monkeypatch):
    """Moves the clock Powertools' cache reads, as if a warm function were called again that much later."""
    from aws_lambda_powertools.utilities.parameters import base

    class Clock(dt.datetime):
        shift = dt.timedelta(0)

        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) + cls.shift

    monkeypatch.setattr(base, "datetime", Clock)

    def move(seconds: float) -> None:
        Clock.shift += dt.timedelta(seconds=seconds)

    return move


def _arn() -> str:
    import os

    return os.environ["CURSOR_SECRET_ARN"]


def begin_rotation(arn: str) -> str:
    """What RotateSecret does before it calls the rotation function: a new version id labelled AWSPENDING, with no
    value yet. (moto's RotateSecret, without a function it can run, moves AWSCURRENT onto that version instead.)"""
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]
    token = str(uuid.uuid4())
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    return token


def run_step(arn: str, token: str, step: str) -> None:
    from handlers.rotate_cursor_secret import handler

    event = {"SecretId": arn, "ClientRequestToken": token, "Step": step}
    handler(event, LambdaContext("CursorSecretRotationFunction", 256, 10))


def rotate(arn: str) -> str:
    token = begin_rotation(arn)
    for step in STEPS:
        run_step(arn, token, step)
    return token


def stages(arn: str) -> dict[str, list[str]]:
    versions = boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId=arn)["VersionIdsToStages"]
    return {version: sorted(labels) for version, labels in versions.items() if labels}


def value(arn: str, **version) -> str:
    version = version or {"VersionStage": "AWSCURRENT"}
    return boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=arn, **version)["SecretString"]


# ---------------------------------------------------------------- reading the keys


def test_the_keys_are_read_from_the_secret_once_per_max_age(world, later):
    keys = world.storage.queue_cursor_keys()
    assert keys == CursorKeys(FIRST_KEY.encode())
    assert world.faults.attempts["GetSecretValue"] == 2, "AWSCURRENT, then AWSPREVIOUS (none before a rotation)"
    later(CURSOR_KEYS_MAX_AGE - 1)
    assert world.storage.queue_cursor_keys() == keys
    assert world.faults.attempts["GetSecretValue"] == 2, "a warm function read the secret again"
    later(2)
    assert world.storage.queue_cursor_keys() == keys
    assert world.faults.attempts["GetSecretValue"] == 3, "AWSCURRENT again; AWSPREVIOUS only changes with it"


def test_a_rotation_reaches_a_warm_function_within_max_age_and_its_cursors_still_open(world, later):
    arn = _arn()
    before = world.storage.queue_cursor_keys()
    cursor = seal({"after": "x"}, context="queue", keys=before, lifetime=LIST_CURSOR_LIFETIME)
    token = rotate(arn)
    assert world.storage.queue_cursor_keys() == before, "cached until its max age"
    later(CURSOR_KEYS_MAX_AGE + 1)
    after = world.storage.queue_cursor_keys()
    assert after.current == json.loads(value(arn, VersionId=token))["secret"].encode()
    assert after.previous == FIRST_KEY.encode()
    assert open_sealed(cursor, context="queue", keys=after) == {"after": "x"}


def test_a_throttled_secret_is_a_503_busy_answer(world):
    from .test_faults_dynamodb import BOTOCORE_ATTEMPTS, assert_busy_answer

    # Secrets Manager answers errors in the same JSON shape as DynamoDB.
    world.faults.fail("GetSecretValue", dynamodb_error("ThrottlingException", "Rate exceeded"))
    assert_busy_answer(world.call("GET", "/v1/review/candidatures", reviewer("75")))
    assert world.faults.attempts["GetSecretValue"] == BOTOCORE_ATTEMPTS
    with pytest.raises(StorageBusy):
        world.storage.search_cursor_keys()
    world.faults.clear()
    assert world.call("GET", "/v1/review/candidatures", reviewer("75")).status == 200


def test_a_short_secret_fails_loudly_rather_than_signing_weakly(world):
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=_arn(), SecretString="short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        world.storage.queue_cursor_keys()


def test_a_function_not_given_the_secret_says_which_variable_is_missing(world, monkeypatch):
    monkeypatch.delenv("SEARCH_CURSOR_SECRET_ARN")
    config.settings.cache_clear()
    with pytest.raises(RuntimeError, match="SEARCH_CURSOR_SECRET_ARN"):
        world.storage.search_cursor_keys()


@pytest.mark.parametrize("variable", ["CURSOR_DEV_SECRET", "SEARCH_CURSOR_DEV_SECRET", "PATIENT_KEY_DEV_SECRET"])
def test_a_dev_secret_is_refused_on_aws_lambda(moto_env, monkeypatch, variable):
    from pydantic import ValidationError

    for other in ("CURSOR_DEV_SECRET", "SEARCH_CURSOR_DEV_SECRET", "PATIENT_KEY_DEV_SECRET"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(variable, FIRST_KEY)
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    with pytest.raises(ValidationError) as refused:
        config.settings()
    assert f"{variable} is for the local stack only" in str(refused.value)
    assert FIRST_KEY not in str(refused.value)


# ---------------------------------------------------------------- rotation


def test_the_four_steps_make_a_new_current_key_and_keep_the_old_one_as_previous(world):
    arn = _arn()
    (first,) = stages(arn)
    token = rotate(arn)
    assert stages(arn) == {first: ["AWSPREVIOUS"], token: ["AWSCURRENT", "AWSPENDING"]}
    made = json.loads(value(arn))
    assert len(made["secret"]) == 64 and made["secret"] != FIRST_KEY
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(made["created_at"])
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=1)
    assert value(arn, VersionStage="AWSPREVIOUS") == FIRST_KEY


def test_every_step_run_again_changes_nothing(world):
    arn = _arn()
    (first,) = stages(arn)
    token = begin_rotation(arn)
    for step in STEPS:
        run_step(arn, token, step)
        pending = value(arn, VersionId=token)
        run_step(arn, token, step)
        assert value(arn, VersionId=token) == pending, step
    after = stages(arn)
    assert after == {first: ["AWSPREVIOUS"], token: ["AWSCURRENT", "AWSPENDING"]}
    for step in STEPS:  # Secrets Manager calling again once the version is current
        run_step(arn, token, step)
    assert stages(arn) == after


def test_a_second_rotation_drops_the_oldest_key(world):
    arn = _arn()
    second = rotate(arn)
    third = rotate(arn)
    assert stages(arn) == {second: ["AWSPREVIOUS"], third: ["AWSCURRENT", "AWSPENDING"]}
    first_keys = CursorKeys(FIRST_KEY.encode())
    now = dt.datetime.now(dt.UTC) + SIGNING_DELAY
    cursor = seal({"after": "x"}, context="queue", keys=first_keys, lifetime=LIST_CURSOR_LIFETIME, now=now)
    keys = CursorKeys.from_secret(value(arn), value(arn, VersionStage="AWSPREVIOUS"))
    with pytest.raises(Exception, match="invalid"):
        open_sealed(cursor, context="queue", keys=keys, now=now)


def test_steps_for_a_version_no_rotation_is_making_fail(world):
    arn = _arn()
    (first,) = stages(arn)
    with pytest.raises(ValueError, match="no rotation started it"):
        run_step(arn, str(uuid.uuid4()), "createSecret")
    abandoned = begin_rotation(arn)
    run_step(arn, abandoned, "createSecret")
    begin_rotation(arn)  # a later rotation took AWSPENDING from it
    with pytest.raises(ValueError, match="not AWSPENDING"):
        run_step(arn, abandoned, "finishSecret")
    assert value(arn) == FIRST_KEY and stages(arn)[first] == ["AWSCURRENT"]


def test_a_pending_key_the_functions_would_refuse_never_becomes_current(world):
    arn = _arn()
    token = begin_rotation(arn)
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString="short", VersionStages=["AWSPENDING"]
    )
    for step in ("testSecret", "finishSecret"):
        with pytest.raises(ValueError, match="at least 32 bytes"):
            run_step(arn, token, step)
    assert value(arn) == FIRST_KEY
