"""Cursor keys across rotations, and cursor expiry (pure: keys and clock given)."""

from __future__ import annotations

import datetime as dt

import pytest

from msp import cursors
from msp.cursors import LIST_CURSOR_LIFETIME, SEARCH_CURSOR_LIFETIME, SIGNING_DELAY, CursorKeys, open_sealed, seal
from msp.errors import InvalidCursor
from msp.http_errors import answer_for
from msp.storage.secrets import CURSOR_KEYS_MAX_AGE

NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
POSITION = {"after": "2026-03-01T10:00:00Z#c-1"}


def _key(name: str) -> str:
    return (name * 64)[:64]


def _rotated(name: str, at: dt.datetime) -> str:
    return cursors.rotated_document(_key(name), at)


class Secret:
    """A secret's AWSCURRENT and AWSPREVIOUS as a rotation leaves them, and the keys a function reads from it."""

    def __init__(self) -> None:
        self.current, self.previous = _key("a"), None  # the bare value the stack is created with
        self.made = 0

    def rotate(self, at: dt.datetime) -> None:
        self.made += 1
        self.current, self.previous = _rotated("bcdefgh"[self.made - 1], at), self.current

    def keys(self) -> CursorKeys:
        return CursorKeys.from_secret(self.current, self.previous)


def _cursor(keys: CursorKeys, at: dt.datetime, lifetime: dt.timedelta = SEARCH_CURSOR_LIFETIME) -> str:
    return seal(POSITION, context="queue", keys=keys, lifetime=lifetime, now=at)


def _opens(cursor: str, keys: CursorKeys, at: dt.datetime) -> bool:
    try:
        return open_sealed(cursor, context="queue", keys=keys, now=at) == POSITION
    except InvalidCursor:
        return False


def test_a_cursor_is_valid_until_its_lifetime_has_passed_then_asks_for_the_first_page():
    keys = Secret().keys()
    cursor = _cursor(keys, NOON)
    assert _opens(cursor, keys, NOON + SEARCH_CURSOR_LIFETIME - dt.timedelta(seconds=1))
    with pytest.raises(InvalidCursor) as refused:
        open_sealed(cursor, context="queue", keys=keys, now=NOON + SEARCH_CURSOR_LIFETIME)
    answer = answer_for(refused.value)
    assert (answer.status, answer.code) == (400, "invalid_cursor")
    assert "expired" in refused.value.message and "first page again" in refused.value.message


def test_the_expiry_is_signed_so_it_cannot_be_pushed_back():
    keys = Secret().keys()
    short = _cursor(keys, NOON)
    long = _cursor(keys, NOON, LIST_CURSOR_LIFETIME)
    payload, mac = short.split(".")
    stretched = f"{long.split('.')[0]}.{mac}"
    assert payload != long.split(".")[0]
    assert not _opens(stretched, keys, NOON)


def test_a_cursor_of_the_previous_secret_opens_after_a_rotation_one_two_rotations_old_does_not():
    secret = Secret()
    before = secret.keys()
    first = _cursor(before, NOON)
    secret.rotate(NOON + dt.timedelta(minutes=1))
    once = secret.keys()
    assert _opens(first, once, NOON + dt.timedelta(minutes=30)), "the previous secret is still accepted"
    settled = NOON + dt.timedelta(minutes=1) + SIGNING_DELAY
    second = _cursor(once, settled)
    secret.rotate(settled + dt.timedelta(minutes=1))
    twice = secret.keys()
    assert _opens(second, twice, settled + dt.timedelta(minutes=2))
    assert not _opens(first, twice, NOON + dt.timedelta(minutes=30)), "two rotations old: refused"


def test_a_new_key_signs_only_once_every_function_has_read_it():
    secret = Secret()
    rotated_at = NOON
    stale = secret.keys()  # a function whose cache predates the rotation
    secret.rotate(rotated_at)
    fresh = secret.keys()
    during = rotated_at + SIGNING_DELAY - dt.timedelta(seconds=1)
    # A function that read the new version still signs with the previous key, which the stale one accepts ...
    assert fresh.signing_key(during) == stale.current
    assert _opens(_cursor(fresh, during), stale, during)
    # ... and the new key once SIGNING_DELAY has passed, by when no function can still hold the old version.
    assert fresh.signing_key(rotated_at + SIGNING_DELAY) == _key("b").encode()
    assert dt.timedelta(seconds=CURSOR_KEYS_MAX_AGE) < SIGNING_DELAY


def test_the_key_the_stack_was_created_with_signs_at_once():
    keys = Secret().keys()
    assert keys.signing_key(NOON) == keys.current and keys.accepted() == (keys.current,)


def test_a_short_or_malformed_secret_fails_loudly():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CursorKeys(b"")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CursorKeys.from_secret(_key("a"), "short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CursorKeys.from_secret(_rotated("", NOON))
    with pytest.raises(ValueError, match="created_at"):
        CursorKeys.from_secret('{"secret": "' + _key("a") + '"}')


def test_the_keys_never_show_in_a_repr():
    keys = Secret().keys()
    assert _key("a") not in repr(keys)
