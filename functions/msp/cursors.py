"""Opaque, tamper-evident pagination cursors (directory search and review queue).

A cursor carries a position and an HMAC over that position and the request it belongs to, so a
forged position or a cursor replayed on another request is refused rather than silently followed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from msp.errors import InvalidCursor

_MIN_SECRET_BYTES = 16


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def require_secret(secret: bytes) -> None:
    """A short or missing secret is a deployment mistake: fail loudly, even before any cursor is made."""
    if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"the cursor secret needs at least {_MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, payload: bytes, context: str) -> bytes:
    require_secret(secret)
    return hmac.new(secret, payload + b"\x00" + context.encode(), hashlib.sha256).digest()


def seal(position: dict[str, Any], *, context: str, secret: bytes) -> str:
    """A cursor for `position`, valid only for requests with the same `context`."""
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return f"{_encode(payload)}.{_encode(_mac(secret, payload, context))}"


def open_sealed(cursor: str, *, context: str, secret: bytes) -> dict[str, Any]:
    """The position a cursor carries; InvalidCursor when it was altered or belongs to another request."""
    refused = InvalidCursor(
        "The cursor is invalid or belongs to another request: ask for the first page again.",
        details=[{"field": "cursor", "message": "use the next_cursor of the previous page, unchanged"}],
    )
    try:
        encoded_payload, encoded_mac = cursor.split(".")
        payload, mac = _decode(encoded_payload), _decode(encoded_mac)
    except (ValueError, binascii.Error):
        raise refused from None
    if not hmac.compare_digest(mac, _mac(secret, payload, context)):
        raise refused
    try:
        position = json.loads(payload)
    except ValueError:
        raise refused from None
    if not isinstance(position, dict):
        raise refused
    return position
