"""The Idempotency-Key header of the create routes: present and well formed, or 400.

Apart from msp.idempotency (Powertools' idempotency utility, which the candidature route uses) so that the
session declaration, whose record is its session item, checks the key without importing that utility.
"""

from __future__ import annotations

import re

from msp.errors import IdempotencyKeyMalformed, IdempotencyKeyMissing

KEY_PATTERN = r"^[A-Za-z0-9_:.-]{8,128}$"
_KEY = re.compile(KEY_PATTERN)


def checked_key(raw: str | None) -> str:
    if not raw:
        raise IdempotencyKeyMissing("Send an 'Idempotency-Key' header (e.g. a UUID) so a retry cannot create twice.")
    if not _KEY.fullmatch(raw):
        raise IdempotencyKeyMalformed("'Idempotency-Key' must be 8 to 128 letters, digits or -_:. characters.")
    return raw
