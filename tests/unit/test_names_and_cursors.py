"""Name folding for search, and sealed cursors."""

from __future__ import annotations

import pytest

from msp.cursors import SEARCH_CURSOR_LIFETIME, CursorKeys, open_sealed, seal
from msp.directory.names import fold, matches_prefix, name_tokens
from msp.errors import InvalidCursor
from msp.http_errors import answer_for

KEYS = CursorKeys(b"0123456789abcdef0123456789abcdef")


def _seal(position, context="search-a"):
    return seal(position, context=context, keys=KEYS, lifetime=SEARCH_CURSOR_LIFETIME)


def test_fold_drops_accents_case_and_separators():
    assert fold("  Éléonore ") == "eleonore"
    assert fold("Lœtitia") == "loetitia"
    assert fold("D'Éon-Lefèvre") == "d eon lefevre"
    assert fold("Ça") == "ca"


def test_tokens_let_a_prefix_of_either_name_or_of_each_word_match():
    tokens = name_tokens("Jean-Pierre", "Le Gall")
    for query in ("jean", "Pierre", "jean-p", "jeanp", "JEAN PIERRE", "le g", "gall", "LeGa", "le"):
        assert matches_prefix(tokens, fold(query)), query
    for query in ("ierre", "gallo", "jean gall", "martin"):
        assert not matches_prefix(tokens, fold(query)), query


def test_accents_do_not_matter_on_either_side():
    tokens = name_tokens("Hélène", "Dupré")
    assert matches_prefix(tokens, fold("helene"))
    assert matches_prefix(tokens, fold("DUPRE"))
    assert matches_prefix(name_tokens("Helene", "Dupre"), fold("Hél"))


def test_a_cursor_round_trips():
    position = {"d": (1.5).hex(), "id": "psy-1"}
    cursor = _seal(position)
    assert open_sealed(cursor, context="search-a", keys=KEYS) == position


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),
        lambda c: ("e" if c[0] != "e" else "f") + c[1:],
        lambda c: c.replace(".", ""),
        lambda c: c + ".x",
        lambda c: "",
        lambda c: "not base64!.???",
        lambda c: "é" + c,
    ],
)
def test_a_tampered_cursor_is_refused(mangle):
    cursor = _seal({"d": (1.5).hex(), "id": "psy-1"})
    with pytest.raises(InvalidCursor) as refused:
        open_sealed(mangle(cursor), context="search-a", keys=KEYS)
    assert answer_for(refused.value).status == 400


def test_a_cursor_has_one_spelling_only():
    # A 32-byte MAC leaves 2 unused bits in its last base64 character: setting them must not pass.
    cursor = _seal({"d": (1.5).hex(), "id": "psy-1"})
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(cursor[-1])
    for unused_bits in (1, 2, 3):
        respelled = cursor[:-1] + alphabet[last ^ unused_bits]
        with pytest.raises(InvalidCursor):
            open_sealed(respelled, context="search-a", keys=KEYS)


def test_a_cursor_from_another_search_or_secret_is_refused():
    cursor = _seal({"d": (1.5).hex(), "id": "psy-1"})
    with pytest.raises(InvalidCursor):
        open_sealed(cursor, context="search-b", keys=KEYS)
    with pytest.raises(InvalidCursor):
        open_sealed(cursor, context="search-a", keys=CursorKeys(b"another secret of 32 bytes......"))
