"""The NIR (numéro de sécurité sociale): format, control key and consistency with a birth date.

A NIR identifies a patient: no message here ever quotes it, or any part of it.
Layout: sex (1), birth year (2), birth month (2), birth place (5, Corsica as 2A/2B), order (3), key (2).
"""

from __future__ import annotations

import datetime as dt
import re

LENGTH = 15

# 1 and 2 are the sex digits of a definitive NIR. Numbers starting with 3/4 (foreigners being registered)
# or 7/8 (temporary numbers) are not certified identities; the programme reimburses patients holding a NIR.
SEX_DIGITS = frozenset("12")

_SHAPE = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$")
_SPACE = r"\s*"
# What passes the format checks of nir_problem (all but the key), as sent: spaces anywhere, Corsica in either
# case. For the OpenAPI document; nir_problem stays the check, with a message per mistake.
INPUT_PATTERN = _SPACE.join(
    [
        "^",
        "[12]",  # sex
        "[0-9]",  # birth year
        "[0-9]",
        f"(?:0{_SPACE}[1-9]|1{_SPACE}[0-2]|[23]{_SPACE}[0-9]|4{_SPACE}[0-2]|[5-9]{_SPACE}[0-9])",  # month code
        f"(?:[0-9]{_SPACE}[0-9]|2{_SPACE}[ABab])",  # birth department
        *["[0-9]"] * 8,  # commune, order, key
        "$",
    ]
)

# The key is computed on a number: INSEE reads 2A as 19 and 2B as 18.
_CORSICA_AS_DIGITS = {"2A": "19", "2B": "18"}


def normalise(raw: str) -> str:
    """The NIR as it is keyed and checked: no spaces (cards print it in groups), letters in capitals."""
    return "".join(raw.split()).upper()


def control_key(first_13: str) -> int:
    """97 minus the 13-character number modulo 97, Corsican departments read as digits."""
    department = first_13[5:7]
    digits = first_13[:5] + _CORSICA_AS_DIGITS.get(department, department) + first_13[7:]
    return 97 - int(digits) % 97


def _month_code(nir: str) -> int:
    return int(nir[3:5])


def has_calendar_month(nir: str) -> bool:
    """False for the codes INSEE gives when the civil record has no birth month."""
    return 1 <= _month_code(nir) <= 12


def _valid_month_code(code: int) -> bool:
    # 20 to 42 and 50 to 99 stand for an unknown month (incomplete civil record, registration in progress).
    return 1 <= code <= 12 or 20 <= code <= 42 or code >= 50


def nir_problem(nir: str) -> str | None:
    """What is wrong with a normalised NIR, or None when its format and key hold."""
    if len(nir) != LENGTH:
        return "a social security number (NIR) is 15 characters: 13, then a 2-digit key"
    if nir[0] not in SEX_DIGITS:
        return "a social security number (NIR) starts with 1 or 2"
    if not _SHAPE.match(nir):
        return "a social security number (NIR) has digits only, except 2A or 2B (Corsica) as 6th and 7th characters"
    if not _valid_month_code(_month_code(nir)):
        return "the 4th and 5th digits of a social security number (NIR) are the birth month, 01 to 12"
    if int(nir[13:]) != control_key(nir[:13]):
        return "the key of the social security number (NIR, last 2 digits) does not match: check for a typing error"
    return None


def birth_date_problem(nir: str, birth_date: dt.date) -> str | None:
    """What contradicts the birth date in a well-formed NIR, or None."""
    if int(nir[1:3]) != birth_date.year % 100:
        return "the birth year does not match the social security number (NIR): check both"
    if has_calendar_month(nir) and _month_code(nir) != birth_date.month:
        return "the birth month does not match the social security number (NIR): check both"
    return None
