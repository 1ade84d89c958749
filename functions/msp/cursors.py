"""Opaque, tamper-evident pagination cursors (directory search, review queue, access journal, sessions).

A cursor carries a position, its expiry and an HMAC over both and the request it belongs to, so a forged
position, a cursor replayed on another request or kept past its lifetime is refused rather than followed.

The HMAC key is a Secrets Manager secret that is rotated (handlers/rotate_cursor_secret.py): a cursor is
signed with the current version and accepted under the current or the previous one, so a rotation leaves the
cursors it finds valid until they expire.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from msp.clock import utc_now
from msp.errors import InvalidCursor

# HMAC-SHA256 keys shorter than the 32-byte digest weaken it (RFC 2104, section 3); the secrets are 64 characters.
MIN_SECRET_BYTES = 32

# How long a cursor stays valid: as long as someone pages through one list, never as long as a rotation
# interval (template.yaml, CursorSecretRotation), so the previous key outlives every cursor it signed.
# A visitor paging through the practices near them.
SEARCH_CURSOR_LIFETIME = dt.timedelta(hours=1)
# A reviewer's queue, an admin's reading of an access journal, a psychologist's month: staff page between long
# reviews of a file, so a working day.
LIST_CURSOR_LIFETIME = dt.timedelta(hours=8)

# A new key signs only once every function has read it: each reads the secret again within its cache's max age
# (storage/secrets.py, CURSOR_KEYS_MAX_AGE: 5 min) after the rotation's last step, which follows the new key's
# creation within seconds. Until then the previous key signs, which every function accepts.
SIGNING_DELAY = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class CursorKeys:
    """The versions of a cursor secret a function knows: AWSCURRENT and, once rotated, AWSPREVIOUS."""

    current: bytes = field(repr=False)
    previous: bytes | None = field(default=None, repr=False)
    # When the rotation made the current key (None: the key the stack was created with).
    current_since: dt.datetime | None = None

    def __post_init__(self) -> None:
        # A short or missing secret is a deployment mistake: fail loudly, before any cursor is made or trusted.
        for key in (self.current, self.previous):
            if key is not None and (not isinstance(key, bytes) or len(key) < MIN_SECRET_BYTES):
                raise ValueError(f"a cursor secret needs at least {MIN_SECRET_BYTES} bytes")

    @classmethod
    def from_secret(cls, current: str, previous: str | None = None) -> CursorKeys:
        """From the secret's AWSCURRENT and AWSPREVIOUS values (see `key_version`)."""
        key, since = key_version(current)
        return cls(key, key_version(previous)[0] if previous is not None else None, since)

    def signing_key(self, now: dt.datetime) -> bytes:
        if self.previous is not None and self.current_since is not None and now < self.current_since + SIGNING_DELAY:
            return self.previous
        return self.current

    def accepted(self) -> tuple[bytes, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)


def key_version(document: str) -> tuple[bytes, dt.datetime | None]:
    """A secret version's key and when it was made: the bare string Secrets Manager generated when the stack
    was created, or the rotation's JSON document {"secret": ..., "created_at": ISO 8601}."""
    if not document.startswith("{"):
        return document.encode(), None
    try:
        data = json.loads(document)
        return data["secret"].encode(), dt.datetime.fromisoformat(data["created_at"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError('a rotated cursor secret is {"secret": ..., "created_at": ...}') from None


def rotated_document(secret: str, created_at: dt.datetime) -> str:
    """The value a rotation stores (read back by `key_version`)."""
    return json.dumps({"secret": secret, "created_at": created_at.astimezone(dt.UTC).isoformat()})


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    """The bytes of `text`, refusing any spelling but the one `_encode` writes (unused low bits set, say)."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _encode(raw) != text:
        raise ValueError("not the canonical encoding")
    return raw


def _mac(secret: bytes, payload: bytes, context: str) -> bytes:
    return hmac.new(secret, payload + b"\x00" + context.encode(), hashlib.sha256).digest()


def seal(
    position: dict[str, Any],
    *,
    context: str,
    keys: CursorKeys,
    lifetime: dt.timedelta,
    now: dt.datetime | None = None,
) -> str:
    """A cursor for `position`, valid only for requests with the same `context`, until `lifetime` has passed."""
    now = now or utc_now()
    expires = int((now + lifetime).timestamp())
    payload = json.dumps({"exp": expires, "pos": position}, separators=(",", ":"), sort_keys=True).encode()
    return f"{_encode(payload)}.{_encode(_mac(keys.signing_key(now), payload, context))}"


def open_sealed(cursor: str, *, context: str, keys: CursorKeys, now: dt.datetime | None = None) -> dict[str, Any]:
    """The position a cursor carries; InvalidCursor when it was altered, belongs to another request or expired."""
    refused = InvalidCursor(
        "The cursor is invalid or belongs to another request: ask for the first page again.",
        details=[{"field": "cursor", "message": "use the next_cursor of the previous page, unchanged"}],
    )
    try:
        encoded_payload, encoded_mac = cursor.split(".")
        payload, mac = _decode(encoded_payload), _decode(encoded_mac)
    except (ValueError, binascii.Error):
        raise refused from None
    if not any(hmac.compare_digest(mac, _mac(key, payload, context)) for key in keys.accepted()):
        raise refused
    try:
        sealed = json.loads(payload)
        expires, position = sealed["exp"], sealed["pos"]
    except (ValueError, KeyError, TypeError):
        raise refused from None
    if not isinstance(position, dict) or not isinstance(expires, int):
        raise refused
    if (now or utc_now()).timestamp() >= expires:
        raise InvalidCursor(
            "The cursor has expired: ask for the first page again.",
            details=[{"field": "cursor", "message": "a cursor is valid for a limited time after its page"}],
        )
    return position
