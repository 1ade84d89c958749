"""Rotation of a cursor secret, in Secrets Manager's four steps.

Before the first step Secrets Manager labels a new version id (the event's ClientRequestToken) AWSPENDING; then
it calls the rotation function once per step, and again after a failure, so each step does nothing when its work
is already done:

- createSecret: the pending version gets a new random key (and when it was made, see cursors.SIGNING_DELAY);
- setSecret: nothing, no other system holds the key (the functions read it from Secrets Manager);
- testSecret: the pending key is one the functions accept (its length above all);
- finishSecret: AWSCURRENT moves to the pending version, and Secrets Manager moves AWSPREVIOUS to the version it
  left, which the functions go on accepting until the next rotation.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Literal, Protocol

from msp import cursors

Step = Literal["createSecret", "setSecret", "testSecret", "finishSecret"]
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
# 48 random bytes, 64 URL-safe characters: the length of the key the stack is created with.
_KEY_BYTES = 48


class SecretVersions(Protocol):
    """One secret's versions in Secrets Manager."""

    def stages(self) -> dict[str, list[str]]:
        """The staging labels of each version id (DescribeSecret's VersionIdsToStages)."""
        ...

    def value(self, version_id: str, stage: str) -> str | None:
        """The value of that version under that label; None when it has none yet."""
        ...

    def put_pending(self, version_id: str, value: str) -> None: ...

    def move_current(self, to_version: str, from_version: str) -> None: ...


def new_key() -> str:
    return secrets.token_urlsafe(_KEY_BYTES)


def rotate(versions: SecretVersions, token: str, step: Step, now: dt.datetime) -> str:
    """Run `step` for the version `token`; what was done, for the log. ValueError when the version is not the
    one being rotated (or its key is unusable): the step fails and Secrets Manager retries it."""
    if step not in _STEPS:
        raise ValueError(f"unknown rotation step {step!r}")
    stages = versions.stages()
    if token not in stages:
        raise ValueError(f"version {token} is not a version of this secret: no rotation started it")
    if CURRENT in stages[token]:
        return "already current: nothing to do"
    if PENDING not in stages[token]:
        raise ValueError(f"version {token} is not AWSPENDING: another rotation replaced it")
    return _STEPS[step](versions, token, stages, now)


def _create(versions: SecretVersions, token: str, stages: dict[str, list[str]], now: dt.datetime) -> str:
    if versions.value(token, PENDING) is not None:
        return "pending key already made"
    versions.put_pending(token, cursors.rotated_document(new_key(), now))
    return "pending key made"


def _set(versions: SecretVersions, token: str, stages: dict[str, list[str]], now: dt.datetime) -> str:
    return "no system to set: the functions read the secret"


def _test(versions: SecretVersions, token: str, stages: dict[str, list[str]], now: dt.datetime) -> str:
    pending = versions.value(token, PENDING)
    if pending is None:
        raise ValueError(f"version {token} has no value: createSecret has not run")
    cursors.CursorKeys.from_secret(pending)  # ValueError for a key the functions would refuse
    return "pending key usable"


def _finish(versions: SecretVersions, token: str, stages: dict[str, list[str]], now: dt.datetime) -> str:
    _test(versions, token, stages, now)
    (current,) = [version for version, labels in stages.items() if CURRENT in labels]
    versions.move_current(token, current)
    return f"AWSCURRENT moved from {current}"


_STEPS = {"createSecret": _create, "setSecret": _set, "testSecret": _test, "finishSecret": _finish}
