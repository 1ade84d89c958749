"""A development token issuer: signs RS256 JWTs shaped like Cognito access tokens.

The key pair lives under .local/ and never leaves the machine; the local gateway trusts only it.
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.template import ROOT

ISSUER = "https://dev-issuer.monsoutienpsy.localhost"
AUDIENCE = "msp-local-client"
KEY_ID = "dev-1"
DEFAULT_KEY_DIR = ROOT / ".local" / "dev-issuer"
ROLE_GROUPS = {"psychologist": "psychologists", "reviewer": "reviewers", "admin": "admins"}


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

    def mint(
        self, role: str, *, sub: str | None = None, departments: str | None = None, ttl: int = 3600, **overrides
    ) -> str:
        now = int(time.time())
        claims = {
            "sub": sub or f"dev-{role}-{uuid.uuid4().hex[:8]}",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "client_id": AUDIENCE,
            "token_use": "access",
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "cognito:groups": [ROLE_GROUPS[role]],
        }
        if departments is not None:
            claims["custom:departments"] = departments
        claims.update(overrides)
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": KEY_ID})

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


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a signed development JWT for the local gateway.")
    parser.add_argument("--role", choices=sorted(ROLE_GROUPS), required=True)
    parser.add_argument("--departments", help="reviewer scope, e.g. 75,92 or *")
    parser.add_argument("--sub", help="subject (user id); random when omitted")
    parser.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    args = parser.parse_args()
    departments = args.departments
    if args.role == "reviewer" and not departments:
        parser.error("a reviewer needs --departments (e.g. 75,92 or *)")
    print(DevIssuer().mint(args.role, sub=args.sub, departments=departments, ttl=args.ttl))


if __name__ == "__main__":
    main()
