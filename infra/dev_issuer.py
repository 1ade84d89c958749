"""A development token issuer: signs RS256 JWTs shaped like Cognito access tokens.

What a token says beyond who signed in is decided as in AWS, by the user pool's pre-token-generation trigger of
template.yaml, run here on the V2 event Cognito would send: its groups, and for a reviewer the departments
admins assigned (read in the stack's tables). A reviewer's own attributes reach the trigger and change nothing.
The key pair lives under .local/ and never leaves the machine; the local gateway trusts only it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.lambda_runtime import LambdaRuntime
from infra.template import FUNCTIONS_DIR, ROOT, Template, load_template
from infra.user_pool import LOCAL_USER_POOL_ID, record_user

ISSUER = "https://dev-issuer.monsoutienpsy.localhost"
AUDIENCE = "msp-local-client"
KEY_ID = "dev-1"
DEFAULT_KEY_DIR = ROOT / ".local" / "dev-issuer"
ROLE_GROUPS = {"psychologist": "psychologists", "reviewer": "reviewers", "admin": "admins"}
# Who the dev issuer's own scope assignments are recorded as, in the reviewer's audit trail.
DEV_ADMIN = "local-dev-issuer"


def token_trigger(template: Template) -> str:
    """The function the user pool calls before issuing tokens; it must take the V2 event (access tokens)."""
    config = template.resources["UserPool"]["Properties"]["LambdaConfig"]["PreTokenGenerationConfig"]
    if config.get("LambdaVersion") != "V2_0":
        raise ValueError("the user pool's token trigger must be LambdaVersion V2_0 to customize access tokens")
    logical_id, attribute = config["LambdaArn"]["Fn::GetAtt"]
    assert attribute == "Arn"
    return logical_id


def trigger_event(sub: str, groups: list[str], attributes: dict[str, str]) -> dict[str, Any]:
    """A pre-token-generation V2 event as Cognito sends it after a sign-in."""
    return {
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "region": "eu-west-3",
        "userPoolId": LOCAL_USER_POOL_ID,
        "userName": sub,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": AUDIENCE},
        "request": {
            "userAttributes": {
                "sub": sub,
                "email": f"{sub}@dev.monsoutienpsy.localhost",
                "email_verified": "true",
                "cognito:user_status": "CONFIRMED",
            }
            | attributes,
            "groupConfiguration": {"groupsToOverride": groups, "iamRolesToOverride": [], "preferredRole": None},
            "scopes": ["aws.cognito.signin.user.admin"],
        },
        "response": {"claimsAndScopeOverrideDetails": None},
    }


def apply_trigger_answer(claims: dict[str, Any], groups: list[str], answer: dict[str, Any]) -> dict[str, Any]:
    """The access token's claims once Cognito applied the trigger's answer."""
    details = answer["response"].get("claimsAndScopeOverrideDetails") or {}
    if "groupOverrideDetails" in details:
        groups = (details["groupOverrideDetails"] or {}).get("groupsToOverride") or []
    access = details.get("accessTokenGeneration") or {}
    claims = claims | ({"cognito:groups": groups} if groups else {}) | (access.get("claimsToAddOrOverride") or {})
    for suppressed in access.get("claimsToSuppress") or []:
        claims.pop(suppressed, None)
    return claims


class DevIssuer:
    def __init__(self, key_dir: Path = DEFAULT_KEY_DIR):
        key_path = key_dir / "private.pem"
        if key_path.exists():
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{key_path} is not an RSA key: delete it and a new one is made")
            self.private_key = loaded
        else:
            key_dir.mkdir(parents=True, exist_ok=True)
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(
                self.private_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            key_path.chmod(0o600)
        self.public_key = self.private_key.public_key()
        self.users_path = key_dir / "users.json"
        self._runtime: tuple[LambdaRuntime, str] | None = None

    def mint(
        self,
        role: str,
        *,
        sub: str | None = None,
        departments: str | None = None,
        second_factor: bool = True,
        attributes: dict[str, str] | None = None,
        ttl: int = 3600,
        **overrides,
    ) -> str:
        """Sign `sub` in with `role`'s group and sign the access token Cognito would issue.

        `departments` ("75,92" or "*") first assigns them to the reviewer, as an admin's PUT would; without it the
        reviewer keeps the departments already assigned. `second_factor=False` is a user without MFA set up;
        `attributes` are user attributes the trigger receives (and must not trust).
        """
        sub = sub or f"dev-{role}-{uuid.uuid4().hex[:8]}"
        if departments is not None:
            assign_as_dev_admin(sub, departments)
        record_user(self.users_path, sub, second_factor=second_factor)
        groups = [ROLE_GROUPS[role]]
        answer = self._trigger(trigger_event(sub, groups, attributes or {}))
        now = int(time.time())
        claims = {
            "sub": sub,
            "iss": ISSUER,
            "client_id": AUDIENCE,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "username": sub,
            "iat": now,
            "nbf": now,
            "auth_time": now,
            "exp": now + ttl,
        }
        claims = apply_trigger_answer(claims, groups, answer) | overrides
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": KEY_ID})

    def _trigger(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._runtime is None:
            template = load_template()
            self._runtime = (LambdaRuntime(template), token_trigger(template))
        runtime, function = self._runtime
        return runtime.invoke(function, event)

    def verify(self, token: str) -> dict:
        """The checks API Gateway's JWT authorizer makes: signature, iss, aud, exp, nbf."""
        header = jwt.get_unverified_header(token)
        if header.get("kid") != KEY_ID:
            raise jwt.InvalidTokenError("unknown key id")
        claims = jwt.decode(
            token,
            self.public_key,
            algorithms=["RS256"],
            issuer=ISSUER,
            options={"require": ["exp", "iss", "sub"], "verify_nbf": True, "verify_aud": False},
        )
        audiences = claims.get("aud") or []
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if AUDIENCE not in audiences and claims.get("client_id") != AUDIENCE:
            raise jwt.InvalidAudienceError("token not issued for this API")
        return claims


def assign_as_dev_admin(reviewer_sub: str, departments: str) -> None:
    """Set a reviewer's departments the way PUT /v1/admin/reviewers/{reviewer_sub}/departments does."""
    from msp.auth import Caller, Role
    from msp.clock import now_iso
    from msp.reviewers.scope import ScopeAssignment, assign_departments
    from msp.storage.reviewer_scopes import ReviewerScopeStore

    store = ReviewerScopeStore(os.environ["APP_TABLE"])
    wanted = ScopeAssignment(departments=[d for d in departments.replace(",", " ").split() if d])
    current = store.scope(reviewer_sub)
    if current.departments != wanted.departments:
        admin = Caller(sub=DEV_ADMIN, roles=frozenset({Role.ADMIN}))
        assign_departments(store, admin, reviewer_sub, wanted, current.version, now_iso())


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a signed development JWT for the local gateway.")
    parser.add_argument("--role", choices=sorted(ROLE_GROUPS), required=True)
    parser.add_argument("--departments", help="assign the reviewer these departments first, e.g. 75,92 or *")
    parser.add_argument("--no-mfa", action="store_true", help="a user who has not set up a second factor")
    parser.add_argument("--sub", help="subject (user id); random when omitted")
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    args = parser.parse_args()
    sys.path.insert(0, str(FUNCTIONS_DIR))  # the trigger's and the scope's code, as the Lambda runtime finds it
    if args.role != "psychologist":
        # The trigger reads the scope in make run's tables and the MFA settings from its user pool stand-in.
        from infra.local_stack import read_connection
        from infra.run import CONNECTION_FILE

        if not CONNECTION_FILE.exists():
            parser.error(f"a {args.role} token is issued from make run's data: start 'make run' first")
        os.environ.update(read_connection(CONNECTION_FILE))
    token = DevIssuer().mint(
        args.role, sub=args.sub, departments=args.departments, second_factor=not args.no_mfa, ttl=args.ttl
    )
    print(token)


if __name__ == "__main__":
    main()
