"""The communes index shipped with the places function: how make places builds it, and what it holds.

The last tests read the generated file itself (functions/msp/places/communes.json, made by `make places`,
which `make test` runs first): every commune of metropolitan France, Corsica and the five overseas
departments is in it, with a centre inside its department's area, and is found by its name and postcode.
"""

from __future__ import annotations

import json
import math
import struct

import pytest

from infra.places_data import Sources, centre, outline, places, point
from infra.template import ROOT
from msp import geography
from msp.places.catalogue import DATA_FILE, load_index
from msp.places.matching import PlaceQuery

COMMUNES_JSON = ROOT / ".tools/npm/node_modules/@etalab/decoupage-administratif/data/communes.json"


def wkb_point(lon: float, lat: float) -> str:
    return struct.pack("<BIdd", 1, 1, lon, lat).hex()


def wkb_multipolygon(*polygons: list[list[tuple[float, float]]]) -> str:
    data = struct.pack("<BII", 1, 6, len(polygons))
    for polygon in polygons:
        data += struct.pack("<BII", 1, 3, len(polygon))
        for ring in polygon:
            data += struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", *xy) for xy in ring)
    return data.hex()


def square(west, south, size, clockwise=False):
    ring = [(west, south), (west + size, south), (west + size, south + size), (west, south + size), (west, south)]
    return ring[::-1] if clockwise else ring


def test_an_outline_gives_its_area_weighted_centroid_and_box_holes_counting_negatively():
    # Two unit squares side by side: the centroid is between them.
    (lon, lat), box = outline(wkb_multipolygon([square(0, 0, 1)], [square(2, 0, 1, clockwise=True)]))
    assert (lon, lat) == pytest.approx((1.5, 0.5))
    assert box == (0, 3, 0, 1)
    # A 4x4 square with a 2x2 hole in its lower-left quarter: the centroid moves away from the hole.
    (lon, lat), _ = outline(wkb_multipolygon([square(0, 0, 4), square(0, 0, 2, clockwise=True)]))
    assert (lon, lat) == pytest.approx((7 / 3, 7 / 3))  # (16 x 2 - 4 x 1) / 12


def test_a_point_reads_as_longitude_then_latitude_with_or_without_srid():
    assert point(wkb_point(4.387, 45.439)) == (4.387, 45.439)
    with_srid = struct.pack("<BIIdd", 1, 0x20000001, 4326, 4.387, 45.439).hex()
    assert point(with_srid) == (4.387, 45.439)
    with pytest.raises(ValueError, match="expected a point"):
        point(wkb_multipolygon([square(0, 0, 1)]))


def _sources(town_hall=None, box_west=4.3, box_south=45.4, size=0.1):
    (found_centroid, box) = outline(wkb_multipolygon([square(box_west, box_south, size)]))
    return Sources(town_hall=town_hall, centroid=found_centroid, box=box)


def test_the_centre_is_the_town_hall_unless_it_is_implausible_then_the_outline_centroid():
    good = _sources(town_hall=(4.38, 45.44))
    assert centre("42218", "42", {"42218": good}, {}) == ((4.38, 45.44), "town hall")
    for typo in [(-4.38, 45.44), (45.44, 45.44), (math.nan, math.nan), (4.5, 45.44)]:
        found = centre("42218", "42", {"42218": _sources(town_hall=typo)}, {})
        assert found == (pytest.approx((4.35, 45.45)), "outline centroid"), typo
    # A commune nouvelle whose own row has nothing: the delegated commune sharing its code.
    assert centre("14581", "14", {"14581": Sources()}, {"14581": _sources()})[1] == "outline centroid"
    assert centre("14581", "14", {}, {}) is None


def _commune(code, name, postcodes, zone="metro", kind="commune-actuelle", department="15"):
    return {
        "code": code,
        "nom": name,
        "departement": department,
        "codesPostaux": postcodes,
        "population": 100,
        "zone": zone,
        "type": kind,
    }


def test_a_commune_without_any_location_gets_the_mean_centre_of_its_postcode_neighbours():
    communes = [
        _commune("15001", "Un", ["15170"]),
        _commune("15002", "Deux", ["15170"]),
        _commune("15003", "Trois", ["15170", "15300"]),
        _commune("97501", "Saint-Pierre", ["97500"], zone="com", department="975"),  # not in the programme
        _commune("15004", "Déléguée", ["15170"], kind="commune-deleguee"),
    ]
    located = {
        "15001": _sources(town_hall=(3.0, 45.1), box_west=2.95, box_south=45.05),
        "15002": _sources(town_hall=(3.1, 45.2), box_west=3.05, box_south=45.15),
    }
    found = {p.insee_code: p for p in places(communes, located, {})}
    assert sorted(found) == ["15001", "15002", "15003"]
    assert (found["15003"].lon, found["15003"].lat) == pytest.approx((3.05, 45.15))


def test_a_commune_without_a_postcode_stops_the_build():
    with pytest.raises(SystemExit, match="no postcode"):
        places([_commune("15001", "Un", [])], {}, {})


# ---------------------------------------------------------------- the generated file


@pytest.fixture(scope="module")
def shipped():
    if not DATA_FILE.is_file():
        pytest.fail(f"{DATA_FILE} is missing: run 'make places' (make test does it first).")
    index = load_index()
    return index, [index.place(position) for position in range(len(index))]


def test_every_commune_of_the_programme_area_is_shipped_with_a_centre_inside_its_department(shipped):
    _, shipped_places = shipped
    expected = {
        c["code"]
        for c in json.loads(COMMUNES_JSON.read_text(encoding="utf-8"))
        if c["type"] in {"commune-actuelle", "arrondissement-municipal"} and c["zone"] in {"metro", "drom"}
    }
    assert {p.insee_code for p in shipped_places} == expected
    departments = {p.department for p in shipped_places}
    assert departments == geography.DEPARTMENTS - {"975"}  # Saint-Pierre-et-Miquelon is a collectivity
    outside = [
        p for p in shipped_places if geography.area_of_point(p.lat, p.lon) != geography.expected_area(p.department)
    ]
    assert not outside, outside[:5]
    assert all(p.postcodes and p.population >= 0 for p in shipped_places)


def test_every_shipped_commune_is_found_by_its_name_and_postcode(shipped):
    index, shipped_places = shipped
    lost = [p for p in shipped_places if p not in index.suggest(PlaceQuery(q=f"{p.name} {p.postcodes[0]}", limit=20))]
    assert not lost, lost[:5]


def test_the_big_cities_come_first(shipped):
    index, _ = shipped
    assert [p.name for p in index.suggest(PlaceQuery(q="st etienne", limit=1))] == ["Saint-Étienne"]
    assert [p.name for p in index.suggest(PlaceQuery(q="13001", limit=2))] == [
        "Marseille 1er Arrondissement",
        "Marseille",
    ]
    assert [p.insee_code for p in index.suggest(PlaceQuery(q="ajaccio", limit=1))] == ["2A004"]
    assert [p.name for p in index.suggest(PlaceQuery(q="97400", limit=1))] == ["Saint-Denis"]
