"""Name search: accent- and case-insensitive prefixes of a first or last name."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters NFKD does not decompose but a French reader treats as two.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"})
_SEPARATORS = re.compile(r"[\s'’\-.]+")


@lru_cache(maxsize=1024)  # a search folds its name query once per practice it reads
def fold(text: str) -> str:
    """Lowercase, without accents, separators collapsed to one space: "Lœtitia D'Éon" -> "loetitia d eon"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return _SEPARATORS.sub(" ", bare).strip()


def name_tokens(first_name: str, last_name: str) -> list[str]:
    """What a name query may be a prefix of: each whole name, each of its words, each name run together.

    "Jean-Pierre" is found by "jean", "pierre", "jean-p" or "jeanp"; "Le Gall" by "le g" or "gall".
    """
    tokens: set[str] = set()
    for name in (first_name, last_name):
        folded = fold(name)
        tokens.add(folded)
        tokens.add(folded.replace(" ", ""))
        tokens.update(folded.split(" "))
    tokens.discard("")
    return sorted(tokens)


def matches_prefix(tokens: list[str], folded_query: str) -> bool:
    return any(token.startswith(folded_query) for token in tokens)
