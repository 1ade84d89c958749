"""A local stand-in for the one Cognito call the token trigger makes: AdminGetUser, for the user's MFA settings.

The dev issuer records each user it signs in (users.json beside its key: whether they set up a second factor);
this server answers from that file on loopback, the way Cognito answers the deployed trigger. The stack points
AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER here; the trigger's code is unchanged.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.loopback_api import LoopbackApi, unknown_operation

LOCAL_USER_POOL_ID = "eu-west-3_LocalPool"
_WRITING = threading.Lock()


def record_user(path: Path, username: str, *, second_factor: bool) -> None:
    """Add or update a user; the file is replaced whole, so a reader never sees half of it."""
    with _WRITING:
        users = read_users(path)
        users[username] = {"second_factor": second_factor}
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_text(json.dumps(users, indent=1, sort_keys=True), encoding="utf-8")
        partial.replace(path)


def read_users(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def admin_get_user(path: Path, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    user = read_users(path).get(request.get("Username", ""))
    if request.get("UserPoolId") != LOCAL_USER_POOL_ID:
        return 400, {"__type": "ResourceNotFoundException", "message": "User pool does not exist."}
    if user is None:
        return 400, {"__type": "UserNotFoundException", "message": "User does not exist."}
    answer: dict[str, Any] = {
        "Username": request["Username"],
        "UserAttributes": [{"Name": "sub", "Value": request["Username"]}],
        "UserStatus": "CONFIRMED",
        "Enabled": True,
    }
    if user["second_factor"]:
        answer |= {"UserMFASettingList": ["SOFTWARE_TOKEN_MFA"], "PreferredMfaSetting": "SOFTWARE_TOKEN_MFA"}
    return 200, answer


class LocalUserPool:
    def __init__(self, users_path: Path):
        self.users_path = users_path
        self.api = LoopbackApi("user-pool", self._answer)

    def _answer(self, _path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        target = headers.get("x-amz-target", "")
        if target != "AWSCognitoIdentityProviderService.AdminGetUser":
            return unknown_operation(target)
        return admin_get_user(self.users_path, json.loads(body or b"{}"))

    def start(self) -> str:
        return self.api.start()

    def stop(self) -> None:
        self.api.stop()
