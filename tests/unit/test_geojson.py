"""Choosing GeoJSON from the Accept header, and the collection built from a search page."""

from __future__ import annotations

import pytest

from msp.directory.geojson import feature_collection, prefers_geojson
from msp.directory.search import SearchPage, SearchResult


@pytest.mark.parametrize(
    ("accept", "geojson"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/*", False),
        ("application/json", False),
        ("application/geo+json", True),
        ("Application/GEO+JSON", True),
        ("application/geo+json, */*;q=0.1", True),
        ("application/geo+json;q=0.5, application/json", False),
        ("application/geo+json;q=0.5, */*;q=0.4", True),
        ("application/geo+json;q=0", False),
        ("application/geo+json;q=nonsense", False),
        ("text/html, application/geo+json;q=0.9, application/*;q=0.8", True),
    ],
)
def test_geojson_only_when_named_and_weighed_at_least_as_json(accept, geojson):
    assert prefers_geojson(accept) is geojson


def test_each_result_is_a_point_longitude_first_carrying_the_result():
    result = SearchResult(
        psychologist_id="p1",
        practice_id="p1-1",
        name="Camille Essai",
        distance_km=1.25,
        address="1 rue de l'Exemple",
        postcode="48000",
        city="Mende",
        department="48",
        lat=44.5,
        lon=3.5,
        phone=None,
        email=None,
        website=None,
        languages=["fr"],
        publics=["adultes"],
        teleconsultation=True,
    )
    collection = feature_collection(SearchPage(results=[result], next_cursor="next")).model_dump(mode="json")
    assert collection == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "p1-1",
                "geometry": {"type": "Point", "coordinates": [3.5, 44.5]},
                "properties": result.model_dump(mode="json"),
            }
        ],
        "next_cursor": "next",
    }
    empty = feature_collection(SearchPage(results=[], next_cursor=None)).model_dump(mode="json")
    assert empty == {"type": "FeatureCollection", "features": [], "next_cursor": None}
