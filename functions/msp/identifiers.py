"""Professional identifiers: RPPS (Luhn key) and ADELI (profession code 93)."""

from __future__ import annotations

import re

RPPS_PATTERN = r"^[0-9]{11}$"
_RPPS = re.compile(RPPS_PATTERN)
_ADELI = re.compile(r"^(?:[0-9]{2}|2[AB])93[0-9]{5}$")
# Either shape, as sent (Corsica in either case): for the OpenAPI document, the problems above being the check.
VALUE_PATTERN = r"^(?:[0-9]{11}|(?:[0-9]{2}|2[ABab])93[0-9]{5})$"


def luhn_is_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def rpps_problem(value: str) -> str | None:
    if not _RPPS.match(value):
        return "an RPPS number is exactly 11 digits"
    if not luhn_is_valid(value):
        return "the RPPS number's check digit (Luhn key) is wrong: check for a typing error"
    return None


def adeli_problem(value: str) -> str | None:
    if len(value) != 9:
        return "an ADELI number is exactly 9 characters"
    if not _ADELI.match(value):
        return "an ADELI number of a psychologist is the department (2 characters), then 93, then 5 digits"
    return None
