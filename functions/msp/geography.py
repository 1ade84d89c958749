"""French departments, postcodes, phone numbers and the areas a practice may lie in."""

from __future__ import annotations

import re

from msp.documented import Documented

# Bounding boxes (lat_min, lat_max, lon_min, lon_max); generous by a few km around the coast.
METROPOLE = (41.3, 51.2, -5.3, 9.7)
OVERSEAS_AREAS = {
    "971": (15.8, 16.6, -61.9, -60.9),  # Guadeloupe
    "972": (14.35, 14.95, -61.3, -60.75),  # Martinique
    "973": (2.0, 5.9, -54.7, -51.5),  # Guyane
    "974": (-21.45, -20.8, 55.15, 55.9),  # La Réunion
    "975": (46.7, 47.2, -56.5, -56.05),  # Saint-Pierre-et-Miquelon
    "976": (-13.1, -12.55, 44.95, 45.35),  # Mayotte
}
METROPOLITAN_DEPARTMENTS = frozenset([f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B"])
DEPARTMENTS = METROPOLITAN_DEPARTMENTS | frozenset(OVERSEAS_AREAS)
DEPARTMENT_CODES = Documented(
    enum=sorted(DEPARTMENTS),
    description="A department code: 01 to 95 (no 20), 2A, 2B or 971 to 976, letters in either case.",
)
# The latitudes and longitudes some area reaches: a coordinate outside them is outside every area.
_BOXES = (METROPOLE, *OVERSEAS_AREAS.values())
LATITUDES = (min(box[0] for box in _BOXES), max(box[1] for box in _BOXES))
LONGITUDES = (min(box[2] for box in _BOXES), max(box[3] for box in _BOXES))
# For a point's coordinates: each within these bounds, the point itself in one of the areas above.
FRANCE_LATITUDES = Documented(
    minimum=LATITUDES[0],
    maximum=LATITUDES[1],
    description="With lon, a point in metropolitan France, Corsica or an overseas department.",
)
FRANCE_LONGITUDES = Documented(
    minimum=LONGITUDES[0],
    maximum=LONGITUDES[1],
    description="With lat, a point in metropolitan France, Corsica or an overseas department.",
)

_POSTCODE = re.compile(r"^\d{5}$")


def department_of_postcode(postcode: str) -> set[str]:
    """Departments a postcode can belong to (Corsican 20xxx codes are shared by 2A and 2B)."""
    if not _POSTCODE.match(postcode):
        return set()
    if postcode.startswith("20"):
        return {"2A", "2B"}
    if postcode.startswith("97"):
        return {postcode[:3]} & set(OVERSEAS_AREAS)
    prefix = postcode[:2]
    return {prefix} if prefix in METROPOLITAN_DEPARTMENTS else set()


def _inside(box: tuple[float, float, float, float], lat: float, lon: float) -> bool:
    lat_min, lat_max, lon_min, lon_max = box
    return lat_min <= lat <= lat_max and lon_min <= lon <= lon_max


def area_of_point(lat: float, lon: float) -> str | None:
    """'metropole', an overseas department code, or None when outside France."""
    if _inside(METROPOLE, lat, lon):
        return "metropole"
    for code, box in OVERSEAS_AREAS.items():
        if _inside(box, lat, lon):
            return code
    return None


def expected_area(department: str) -> str:
    return department if department in OVERSEAS_AREAS else "metropole"


# National numbers whose first digits belong to an overseas numbering plan.
_OVERSEAS_PHONE_PREFIXES = {
    "262": "262",
    "263": "262",
    "692": "262",
    "693": "262",
    "269": "262",
    "639": "262",
    "590": "590",
    "690": "590",
    "691": "590",
    "594": "594",
    "694": "594",
    "596": "596",
    "696": "596",
    "697": "596",
}
_INTERNATIONAL = re.compile(r"^\+(33|262|590|594|596)([1-9][0-9]{8})$|^\+508([0-9]{6})$")
_NATIONAL = re.compile(r"^0([1-9][0-9]{8})$")
_SEPARATOR = r"[\s.()-]"
_SEPARATORS = re.compile(_SEPARATOR)
_GAP = f"{_SEPARATOR}*"


def _spaced(atoms: str) -> str:
    """A pattern of single characters and [...] classes, with separators allowed between them."""
    return _GAP.join(re.findall(r"\[[^\]]*\]|.", atoms))


_INTERNATIONAL_PREFIX = f"(?:\\+|{_spaced('00')}){_GAP}"
_COUNTRY_CODES = "|".join(_spaced(code) for code in ("33", "262", "590", "594", "596"))
# What normalise_phone accepts, as one pattern, read alike by ECMA-262, Python and Rust (their \s differ on a few
# control characters only): a national number, a French country code and 9 digits after + or 00, or
# Saint-Pierre-et-Miquelon's 508 and 6 digits. The model checks it (Rust) and the document states it.
PHONE_PATTERN = (
    f"^{_GAP}(?:{_spaced('0[1-9]' + '[0-9]' * 8)}"
    f"|{_INTERNATIONAL_PREFIX}(?:{_COUNTRY_CODES}){_GAP}{_spaced('[1-9]' + '[0-9]' * 8)}"
    f"|{_INTERNATIONAL_PREFIX}{_spaced('508[1-9]' + '[0-9]' * 5)}){_GAP}$"
)


def normalise_phone(raw: str) -> str | None:
    """E.164 form of a French (metropolitan or overseas) number, or None when it is not one."""
    number = _SEPARATORS.sub("", raw)
    if number.startswith("00"):
        number = "+" + number[2:]
    national = _NATIONAL.match(number)
    if national:
        digits = national.group(1)
        country = _OVERSEAS_PHONE_PREFIXES.get(digits[:3], "33")
        return f"+{country}{digits}"
    if number.startswith("+5080"):
        return None
    return number if _INTERNATIONAL.match(number) else None
